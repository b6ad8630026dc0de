"""Checkpoints: OccWorld's format, written atomically, read with `torch.load(weights_only=True)`.

Contents (only tensors and plain Python types, so the safe loader reads them):
    state_dict      the unwrapped model (no `module.` prefix), OccWorld's key names
    optimizer       AdamW state_dict
    scheduler       WarmupCosine.state_dict() (plain numbers)
    epoch           epochs completed when written (OccWorld convention: epoch_5.pth has epoch = 5)
    global_iter     optimizer steps taken
    iter_in_epoch   batches of the next epoch already trained (0 at epoch ends; > 0 in mid-epoch latest.pth)
    scaler          GradScaler state_dict (fp16 on CUDA) or {}
    rng             per rank: torch / numpy / python (/ cuda) generator states as uint8/int64 tensors
    best_val_loss   lowest validation loss so far (inf before the first evaluation)
    stage           'tokenizer' or 'world_model'
    config_json     the resolved config as JSON text
    meta            {'torch': version, 'world_size': n, 'time': iso time}
    checksum        SHA-256 of the state_dict's content (`model.checkpoint.state_checksum`), added on save
    best_epoch      the epoch whose weights best.pth holds (0: none yet); epoch ends also carry
    metrics_json    that evaluation's metrics, so best.pth and metrics/ can be rebuilt after an interruption
    run_complete    True only in the best.pth of a run that reached max_epochs (stage 2 refuses a tokenizer
                    without it)

Reading goes through `occworld_tokyo.model.checkpoint.read_checkpoint` (the one reader: weights-only, finite
tensors, checksum) and its `CheckpointError`.
Newest checkpoint = largest (epoch, global_iter) read FROM THE FILES, never from file names.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from occworld_tokyo.model.checkpoint import CheckpointError, read_checkpoint, state_checksum

CHECKPOINT_KEYS = ("state_dict", "optimizer", "scheduler", "epoch", "global_iter")


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write atomically: a temporary file in the same folder, flushed to disk, then renamed over `path`.
    A payload with a state_dict gets its content `checksum`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(payload.get("state_dict"), dict):
        payload = {**payload, "checksum": state_checksum(payload["state_dict"])}
    return _write_atomically(path, lambda f: torch.save(payload, f))


def copy_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Atomic byte copy (same guarantees as save_checkpoint): used to rebuild best.pth from epoch_N.pth."""
    def copy(f) -> None:
        with open(src, "rb") as s:
            shutil.copyfileobj(s, f, 1 << 20)
    return _write_atomically(Path(dst), copy)


def _write_atomically(path: Path, write) -> Path:
    """`write(file)` into a temporary file beside `path`, flushed to disk, then renamed over `path`; on any
    failure the temporary file is removed and `path` is untouched."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", mmap: bool = False,
                    verify: bool = True) -> dict:
    """A training checkpoint, read and verified by the one reader; a clear CheckpointError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: check the path, or list the work dir's *.pth")
    ckpt = read_checkpoint(path, map_location=map_location, mmap=mmap, verify=verify)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not a training checkpoint (no 'state_dict' key): pass a file written "
                              "by train.py (epoch_N.pth, latest.pth, best.pth)")
    return ckpt


def checkpoint_position(path: str | Path) -> tuple[int, int]:
    """(epoch, global_iter) stored in a checkpoint file (memory-mapped: cheap for big files)."""
    ckpt = load_checkpoint(path, mmap=True, verify=False)  # position only; the file used is verified on load
    return int(ckpt.get("epoch", 0)), int(ckpt.get("global_iter", 0))


def checkpoint_dirs(work_dir: str | Path) -> list[Path]:
    """Where checkpoints of a work dir may be: the dir itself and the guide's `<work-dir>/checkpoints/`."""
    work_dir = Path(work_dir)
    return [d for d in (work_dir, work_dir / "checkpoints") if d.is_dir()]


def find_latest(work_dir: str | Path, log=print) -> Path | None:
    """The resumable checkpoint with the largest (epoch, global_iter); best.pth is not a resume point."""
    found: list[tuple[tuple[int, int, int], Path]] = []
    for d in checkpoint_dirs(work_dir):
        for p in d.glob("*.pth"):
            if p.name == "best.pth":
                continue
            try:
                epoch, it = checkpoint_position(p)
            except CheckpointError as exc:
                log(f"skipping unreadable checkpoint: {exc}")
                continue
            found.append(((epoch, it, int(p.name.startswith("epoch_"))), p))
    return max(found)[1] if found else None


def find_best(work_dir: str | Path) -> Path | None:
    for d in checkpoint_dirs(work_dir):
        if (d / "best.pth").is_file():
            return d / "best.pth"
    return None


# ------------------------------------------------------------------------------------------------ RNG states
def capture_rng() -> dict[str, torch.Tensor]:
    """All generator states of this process as tensors (readable by the weights-only loader)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_meta": torch.tensor([np_state[2], np_state[3]], dtype=torch.int64),
        "numpy_gauss": torch.tensor([np_state[4]], dtype=torch.float64),
        "python": torch.tensor([py_state[0], *py_state[1]], dtype=torch.int64),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.stack([s for s in torch.cuda.get_rng_state_all()])
    return state


def restore_rng(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    pos, has_gauss = (int(v) for v in state["numpy_meta"].tolist())
    np.random.set_state(("MT19937", keys, pos, has_gauss, float(state["numpy_gauss"][0])))
    py = [int(v) for v in state["python"].tolist()]
    random.setstate((py[0], tuple(py[1:]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"].cpu()))
