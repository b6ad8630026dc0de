"""Atomic export folders: everything is written under `<out>.tmp-export` and renamed to `<out>` at the end, so a
crash or a refused input never leaves a half-written export under the final name; an existing `<out>` is never
touched."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np

from occworld_tokyo.errors import UserError


class ExportError(UserError):
    """The export cannot start or go on; the message names the file or field and the fix."""


def check_new(out: Path) -> None:
    if Path(out).exists():
        raise ExportError(f"{out} already exists; nothing was written: give a new OUT_DIR (exports never overwrite)")


def staging_dir(out: Path) -> Path:
    out = Path(out)
    check_new(out)
    tmp = out.with_name(out.name + ".tmp-export")
    if tmp.exists():
        shutil.rmtree(tmp)  # the leftover of a crashed export of ours
    tmp.mkdir(parents=True)
    return tmp


def finish(tmp: Path, out: Path) -> None:
    os.replace(tmp, out)


def save_npz(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def save_pickle(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)
