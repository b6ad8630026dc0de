"""Reading session folders written by the data generator (layout: docs/data_format.md).

A session is a folder with a meta.json; frames are `occupancy/NNNNNN_occupancy.npz` + `poses/NNNNNN.json`.
These helpers only read; they never modify the data.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from occworld_tokyo.errors import UserError
from occworld_tokyo.grid import DEFAULT_GRID, GridSpec
from occworld_tokyo.sessions import layout
from occworld_tokyo.sessions.validate import DEFAULT_RATE_HZ, meta_problem, pose_value_problem, read_json


class DataError(UserError):
    """The data root or a session cannot be used for training; the message says which file and what to do."""


@dataclass(frozen=True)
class SessionInfo:
    path: Path
    name: str
    agent_type: str
    n_frames: int
    rate_hz: float
    has_masks: bool  # False when generated without sensors: masks are then treated as all-visible
    grid: GridSpec = DEFAULT_GRID  # the stored grid (meta.json `grid`): the default one or `--grid occ3d`


def read_session(path: Path) -> SessionInfo:
    """Meta data of one session folder, checked against the files present."""
    path = Path(path)
    meta, problem = read_json(path / "meta.json")
    problem = problem or meta_problem(meta)
    if problem:
        raise DataError(f"{path / 'meta.json'}: {problem}; regenerate this session (python "
                        f"scripts/plateau_to_occworld.py --output {path.parent}) or move it out of the data folder "
                        f"(`occworld-tokyo validate {path.parent}` lists every problem)")
    n = meta["n_frames"]
    try:
        grid = GridSpec.from_dict(meta["grid"]) if "grid" in meta else DEFAULT_GRID
        shape = tuple(meta["grid"].get("shape", grid.shape)) if "grid" in meta else grid.shape
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(f"{path / 'meta.json'}: field grid unreadable ({exc}); regenerate this "
                        "session") from exc
    if shape != grid.shape:
        raise DataError(f"{path / 'meta.json'}: grid shape {shape} does not match its ranges and voxel size "
                        f"{grid.shape}; regenerate this session")
    last = layout.occupancy_path(path, n - 1)
    if n < 1 or not last.is_file() or not layout.pose_path(path, n - 1).is_file():
        raise DataError(f"{path}: meta.json says {n} frames but {last.name} or its pose is missing; "
                        "regenerate this session")
    try:
        with zipfile.ZipFile(layout.occupancy_path(path, 0)) as zf:
            names = set(zf.namelist())
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{layout.occupancy_path(path, 0)}: unreadable ({exc}); delete {path} and regenerate "
                        "it") from exc
    return SessionInfo(path=path, name=path.name, agent_type=meta.get("agent_type", path.name.split("_")[0]),
                       n_frames=n, rate_hz=float(meta.get("rate_hz", DEFAULT_RATE_HZ)),
                       has_masks={"mask_lidar.npy", "mask_camera.npy"} <= names, grid=grid)


def find_sessions(data_root: str | Path, agent_types: list[str] | None = None) -> list[SessionInfo]:
    """All finished sessions under data_root (of `agent_types` when given), sorted by name; a DataError when
    there are none."""
    root = Path(data_root)
    paths = layout.find_sessions(root)
    if not paths:
        why = "does not exist" if not root.exists() else "holds no session folder with a meta.json"
        raise DataError(f"data_root {root} {why}; generate data first: "
                        f"python scripts/plateau_to_occworld.py --output {root} --frames 200 --sessions 5 "
                        "(or ./scripts/run_training.sh --generate-data)")
    sessions = [read_session(p) for p in unique_sessions(paths)]
    if agent_types:
        sessions = [s for s in sessions if s.agent_type in agent_types]
        if not sessions:
            raise DataError(f"data_root {root} holds no session of data.agent_types {list(agent_types)}")
    return sessions


def unique_sessions(paths: list[Path]) -> list[Path]:
    """Session folders that are one folder on disk (a symlink to another session, or two links to one) counted
    once: the real folder's name is kept (else the first name), so a session never lands in train and its twin in
    val."""
    chosen: dict[tuple[int, int], Path] = {}
    for path in paths:
        st = path.stat()
        key = (st.st_dev, st.st_ino)
        if key not in chosen or (chosen[key].is_symlink() and not path.is_symlink()):
            chosen[key] = path
    keep = set(chosen.values())
    return [p for p in paths if p in keep]


READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, NotImplementedError,
               RuntimeError)


def read_occupancy(session: Path, frame: int, keys: tuple[str, ...] = ("occupancy",)) -> dict[str, np.ndarray]:
    """The requested arrays of one frame's npz (only those are decompressed); a file that cannot be read is a
    DataError naming it (`occworld-tokyo validate` and the training's data check read every array first)."""
    path = layout.occupancy_path(session, frame)
    try:
        with np.load(path) as npz:
            return {k: npz[k] for k in keys if k in npz.files}
    except READ_ERRORS as exc:
        raise DataError(f"{path}: unreadable ({type(exc).__name__}: {exc}); delete {Path(session)} and regenerate "
                        f"it, or move it out of the data folder (`occworld-tokyo validate {Path(session).parent}` "
                        "lists every damaged file)") from exc


def read_pose(session: Path, frame: int) -> dict:
    """One frame's pose JSON, its numbers checked (`sessions.validate.pose_value_problem`): a DataError naming
    the file and the field otherwise."""
    path = layout.pose_path(session, frame)
    pose, problem = read_json(path)
    problem = problem or pose_value_problem(pose)
    if problem:
        raise DataError(f"{path}: {problem}; delete {Path(session)} and regenerate it, or move it out of the data "
                        f"folder (`occworld-tokyo validate {Path(session).parent}` lists every problem)")
    return pose
