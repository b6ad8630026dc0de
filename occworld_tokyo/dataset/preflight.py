"""Check every session and frame a run will read BEFORE training starts, so a bad file stops the run at once
with its name and the fix instead of a traceback mid-epoch (or silent training on garbage).

Per session: meta.json readable with its fields, every frame 0..n_frames-1 present (occupancy npz + pose JSON).
Per frame: the npz opens, holds the keys the run reads (`occupancy`; `instances` for world-model validation;
the visibility masks when the config asks for them and the session has them), each array has the stored
grid's shape (meta.json `grid`: (200, 200, 121), or (200, 200, 16) for `--grid occ3d`) and its dtype (uint8 / int32 / bool), every label id is in the label table
(0..NUM_CLASSES-1); the pose JSON has the schema of docs/data_format.md (position x, y, z in m; orientation
a unit quaternion x, y, z, w; velocity.linear m/s and velocity.angular rad/s, each x, y, z), all finite and within
the ranges of `sessions.validate` (a position of 1e300 m is a damaged file, not a place). meta.json is checked
when the session is found (`dataset.sessions.read_session`: whole n_frames, positive finite rate_hz, UTF-8).
Every array of every frame (all members of the npz, also those this run does not read) is decompressed in full,
which checks its CRC-32: a damaged byte anywhere stops the run here, naming the file, never mid-epoch. The frames
are checked in threads (zlib releases the GIL; about 0.07 s per frame with sensors on one core).
"""

from __future__ import annotations

import time
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from occworld_tokyo import labels
from occworld_tokyo.dataset.sessions import DataError, SessionInfo
from occworld_tokyo.sessions import layout
from occworld_tokyo.sessions.validate import pose_value_problem, read_json

STORED_SHAPE = (200, 200, 121)
ARRAY_DTYPES = {"occupancy": np.uint8, "instances": np.int32, "mask_lidar": np.bool_, "mask_camera": np.bool_}
MAX_LISTED = 5


CHUNK = 1 << 22
READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, NotImplementedError,
               RuntimeError)  # truncated, not a zip, CRC or deflate error, odd compression or encryption


def _read_member(zf: zipfile.ZipFile, name: str, header: bool) -> tuple[tuple[int, ...], np.dtype, int]:
    """Decompress one member to its end (zipfile then checks its CRC-32); with `header`, parse its .npy header
    first. Returns (shape, dtype, largest byte value of a uint8 array, else 0)."""
    shape, dtype, top = (), np.dtype(np.uint8), 0
    with zf.open(name) as f:
        if header:
            major, _ = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
        while chunk := f.read(CHUNK):
            if header and dtype == np.uint8:
                top = max(top, int(np.frombuffer(chunk, np.uint8).max()))
    return tuple(shape), np.dtype(dtype), top


def check_occupancy_file(path: Path, keys: tuple[str, ...], shape: tuple[int, ...] = STORED_SHAPE) -> str | None:
    """What is wrong with one frame's npz for training (arrays of the session's stored `shape`), or None. Every
    member is read to its end (CRC-32), the `keys` also checked for shape, dtype and (occupancy) label range."""
    if not path.is_file():
        return "missing"
    try:
        with zipfile.ZipFile(path) as zf:
            present = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
            missing = [k for k in keys if k not in present]
            if missing:
                return f"missing key(s) {missing}"
            for name in zf.namelist():
                key = name[:-4] if name.endswith(".npy") else None
                try:
                    found, dtype, top = _read_member(zf, name, header=key in keys)
                except READ_ERRORS as exc:
                    return f"array '{name}' unreadable (damaged: {exc})"
                if key not in keys:
                    continue
                if found != tuple(shape):
                    return f"key '{key}' has shape {found}, expected {tuple(shape)}"
                if dtype != ARRAY_DTYPES[key]:
                    return f"key '{key}' has dtype {dtype}, expected {np.dtype(ARRAY_DTYPES[key])}"
                if key == "occupancy" and top >= labels.NUM_CLASSES:
                    return f"label id {top} is outside the label table 0..{labels.NUM_CLASSES - 1}"
    except READ_ERRORS as exc:
        return f"unreadable (truncated or not an npz: {exc})"
    return None


def check_pose_file(path: Path) -> str | None:
    """What is wrong with one frame's pose JSON for training (its numbers finite and in range, naming the field:
    `sessions.validate.pose_value_problem`), or None."""
    if not path.is_file():
        return "missing"
    pose, problem = read_json(path)
    return problem or pose_value_problem(pose)


def frame_problems(session: SessionInfo, i: int, keys: tuple[str, ...]) -> list[str]:
    op, pp = layout.occupancy_path(session.path, i), layout.pose_path(session.path, i)
    return [f"{path}: {problem}" for path, problem in ((op, check_occupancy_file(op, keys, session.grid.shape)),
                                                      (pp, check_pose_file(pp))) if problem]


def session_problems(session: SessionInfo, keys: tuple[str, ...]) -> list[str]:
    problems = []
    for i in range(session.n_frames):
        problems += frame_problems(session, i, keys)
        if len(problems) >= MAX_LISTED:
            break
    return problems


def check_sessions(sessions: list[SessionInfo], with_instances: bool, visibility: str | None) -> str:
    """Raise DataError naming the first bad files and the fix; else a log line saying what was checked."""
    from occworld_tokyo.threads import usable_cores

    t0 = time.perf_counter()
    problems: list[str] = []
    bad_sessions: list[str] = []
    tasks = []
    for s in sessions:
        keys = ("occupancy",) + (("instances",) if with_instances else ()) + \
               ((f"mask_{visibility}",) if visibility and s.has_masks else ())
        tasks += [(s, i, keys) for i in range(s.n_frames)]
    with ThreadPoolExecutor(max_workers=max(1, min(usable_cores(), 16))) as pool:
        futures = [pool.submit(frame_problems, *task) for task in tasks]
        try:
            for (s, _, _), future in zip(tasks, futures):
                found = future.result()
                if found:
                    if str(s.path) not in bad_sessions:
                        bad_sessions.append(str(s.path))
                    problems += found
                if len(problems) >= MAX_LISTED:
                    break
        finally:
            for future in futures:
                future.cancel()
    if problems:
        root = sessions[0].path.parent
        raise DataError(
            f"the training data has bad frames (checked before training; first {min(len(problems), MAX_LISTED)}): "
            f"{'; '.join(problems[:MAX_LISTED])}. Fix: delete the bad session folder(s) ({', '.join(bad_sessions)}) "
            f"and regenerate them (python scripts/plateau_to_occworld.py --output {root} with the same settings "
            f"writes only the missing sessions), or move them out of data_root; `occworld-tokyo validate {root}` "
            "lists every problem")
    n = sum(s.n_frames for s in sessions)
    return (f"data check: {len(sessions)} session(s), {n} frames ok (every array read in full: CRC, keys, shape, "
            f"dtype, label range; pose schema; all frames present) in {time.perf_counter() - t0:.1f} s")
