"""Check a data folder of sessions: keys, shapes, dtypes, pose schema, frame/time continuity, statistics.

Used by `occworld-tokyo validate DIR` and `scripts/sanity_check_data.py DIR`. Prints a summary and exits
non-zero when anything is wrong, naming the file and the field.
"""

from __future__ import annotations

import argparse
import json
import math
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from occworld_tokyo import labels
from occworld_tokyo.sessions import layout

POSE_SCHEMA = {
    "timestamp": None, "frame": None, "agent_type": None, "ground_height": None,
    "position": ("x", "y", "z"), "orientation": ("x", "y", "z", "w"),
}
VELOCITY_KEYS = ("linear", "angular")


@dataclass
class SessionCheck:
    path: Path
    frames: int = 0
    problems: list[str] = field(default_factory=list)
    class_voxels: np.ndarray = field(default_factory=lambda: np.zeros(labels.NUM_CLASSES, dtype=np.int64))
    total_voxels: int = 0
    empty_frames: int = 0
    lidar_points: int = 0
    annotated_objects: int = 0

    def problem(self, file: Path | str, message: str) -> None:
        self.problems.append(f"{file}: {message}")


def _check_pose(check: SessionCheck, path: Path, i: int, agent: str) -> float | None:
    try:
        pose = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        check.problem(path, f"unreadable pose JSON ({exc})")
        return None
    for key, sub in POSE_SCHEMA.items():
        if key not in pose:
            check.problem(path, f"missing field '{key}'")
            return None
        if sub and not all(isinstance(pose[key].get(k), (int, float)) for k in sub):
            check.problem(path, f"field '{key}' must have numeric {', '.join(sub)}")
            return None
    vel = pose.get("velocity", {})
    for key in VELOCITY_KEYS:
        if not isinstance(vel.get(key), dict) or not all(isinstance(vel[key].get(k), (int, float)) for k in "xyz"):
            check.problem(path, f"missing or non-numeric field 'velocity.{key}.{{x,y,z}}'")
            return None
    if pose["frame"] != i:
        check.problem(path, f"field 'frame' is {pose['frame']}, expected {i}")
    if pose["agent_type"] != agent:
        check.problem(path, f"field 'agent_type' is {pose['agent_type']!r}, meta.json says {agent!r}")
    q = np.array([pose["orientation"][k] for k in "xyzw"], dtype=float)
    if abs(np.linalg.norm(q) - 1.0) > 1e-3:
        check.problem(path, f"field 'orientation' is not a unit quaternion (norm {np.linalg.norm(q):.4f})")
    values = [pose["timestamp"], pose["ground_height"], *pose["position"].values(), *q]
    if not all(math.isfinite(v) for v in values):
        check.problem(path, "non-finite value")
    return float(pose["timestamp"])


READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, NotImplementedError,
               RuntimeError)  # truncated, not a zip, CRC or deflate error, odd compression or encryption


def _damaged_member(path: Path) -> str | None:
    """The first member of an npz that cannot be decompressed to its end with a matching CRC-32, with why."""
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            try:
                with zf.open(name) as f:
                    while f.read(1 << 22):
                        pass
            except READ_ERRORS as exc:
                return f"array '{name}' unreadable (damaged: {exc})"
    return None


def _check_occupancy(check: SessionCheck, path: Path, shape: tuple[int, ...], sensors: bool) -> None:
    try:
        damaged = _damaged_member(path)
        if damaged:
            check.problem(path, damaged)
            return
        with np.load(path) as npz:
            keys = set(npz.files)
            need = {"occupancy", "instances"} | ({"mask_lidar", "mask_camera"} if sensors else set())
            if need - keys:
                check.problem(path, f"missing key(s) {sorted(need - keys)}")
                return
            occ = npz["occupancy"]
            expected = {"occupancy": np.uint8, "instances": np.int32, "mask_lidar": np.bool_, "mask_camera": np.bool_}
            for key in need:
                arr = occ if key == "occupancy" else npz[key]
                if arr.shape != shape:
                    check.problem(path, f"key '{key}' has shape {arr.shape}, expected {shape}")
                if arr.dtype != expected[key]:
                    check.problem(path, f"key '{key}' has dtype {arr.dtype}, expected {np.dtype(expected[key])}")
    except READ_ERRORS as exc:
        check.problem(path, f"unreadable npz ({exc})")
        return
    if occ.max(initial=0) >= labels.NUM_CLASSES:
        check.problem(path, f"label id {int(occ.max())} is not in the label table (0..{labels.NUM_CLASSES - 1})")
        return
    counts = np.bincount(occ.ravel(), minlength=labels.NUM_CLASSES)
    check.class_voxels += counts
    check.total_voxels += occ.size
    check.empty_frames += int(counts[labels.FREE] == occ.size)


ANNOTATION_KEYS = ("id", "class", "center", "size", "yaw", "velocity")


def _check_annotations(check: SessionCheck, path: Path, i: int) -> None:
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        check.problem(path, f"unreadable annotations JSON ({exc})")
        return
    if record.get("frame") != i or not isinstance(record.get("objects"), list):
        check.problem(path, "annotations need 'frame' (this frame's index) and an 'objects' list")
        return
    for obj in record["objects"]:
        missing = [k for k in ANNOTATION_KEYS if k not in obj]
        if missing:
            check.problem(path, f"annotation object {obj.get('id')} misses field(s) {missing}")
            return
        if len(obj["center"]) != 3 or len(obj["size"]) != 3 or min(obj["size"]) <= 0:
            check.problem(path, f"annotation object {obj['id']}: 'center' and 'size' need 3 values, sizes > 0")
            return
    check.annotated_objects += len(record["objects"])


def _check_sensors(check: SessionCheck, session: Path, i: int) -> None:
    lp = layout.lidar_path(session, i)
    if not lp.is_file():
        check.problem(lp, "missing lidar file")
    else:
        pts = np.load(lp)
        if pts.ndim != 2 or pts.shape[1] != 4 or pts.dtype != np.float32:
            check.problem(lp, f"lidar must be float32 (N, 4), got {pts.dtype} {pts.shape}")
        elif not np.isfinite(pts).all():
            check.problem(lp, "lidar has non-finite values")
        else:
            check.lidar_points += len(pts)
    ip = layout.image_path(session, i)
    if not ip.is_file():
        check.problem(ip, "missing camera image")
    else:
        try:
            with Image.open(ip) as im:
                if im.format != "JPEG" or im.size != (1600, 900) or im.mode != "RGB":
                    check.problem(ip, f"image must be a 1600x900 RGB JPEG, got {im.format} {im.size} {im.mode}")
        except OSError as exc:
            check.problem(ip, f"unreadable image ({exc})")


def check_session(session: Path) -> SessionCheck:
    check = SessionCheck(session)
    try:
        meta = json.loads((session / "meta.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        check.problem(session / "meta.json", f"unreadable ({exc})")
        return check
    for key in ("agent_type", "n_frames", "rate_hz", "grid", "labels"):
        if key not in meta:
            check.problem(session / "meta.json", f"missing field '{key}'")
    if check.problems:
        return check
    n, rate, agent = int(meta["n_frames"]), float(meta["rate_hz"]), meta["agent_type"]
    shape = tuple(meta["grid"]["shape"])
    sensors = bool(meta.get("sensors"))
    occ_files = sorted((session / "occupancy").glob("*_occupancy.npz"))
    pose_files = sorted((session / "poses").glob("*.json"))
    if len(occ_files) != n or len(pose_files) != n:
        check.problem(session, f"meta.json says n_frames={n}, found {len(occ_files)} occupancy and {len(pose_files)} pose files")
    prev_t = None
    for i in range(n):
        op, pp = layout.occupancy_path(session, i), layout.pose_path(session, i)
        if not op.is_file() or not pp.is_file():
            check.problem(session, f"frame {i:06d} is missing (occupancy or pose file): frames must be continuous")
            continue
        _check_occupancy(check, op, shape, sensors)
        t = _check_pose(check, pp, i, agent)
        if t is not None and prev_t is not None and abs((t - prev_t) - 1.0 / rate) > 1e-3:
            check.problem(pp, f"timestamp step {t - prev_t:.4f} s, expected {1.0 / rate:.4f} s at {rate} Hz")
        prev_t = t if t is not None else prev_t
        if sensors:
            _check_sensors(check, session, i)
        if (session / "annotations").is_dir():
            ap = layout.annotation_path(session, i)
            if ap.is_file():
                _check_annotations(check, ap, i)
            else:
                check.problem(ap, "missing annotations file (the session has an annotations/ folder)")
        check.frames += 1
    if check.frames and check.empty_frames == check.frames:
        check.problem(session, "every frame is empty (all free): the trajectory never sees the city")
    return check


def validate(root: Path) -> tuple[list[SessionCheck], list[str]]:
    """Check every session under root. Returns the checks and folder-level problems."""
    root = Path(root)
    if not root.is_dir():
        return [], [f"{root}: not a folder (generate data first: python scripts/plateau_to_occworld.py --output {root})"]
    folder_problems = []
    leftovers = [p.name for p in root.iterdir() if p.name.startswith(layout.TMP_PREFIX)]
    if leftovers:
        folder_problems.append(f"{root}: unfinished session(s) {leftovers} (re-run the generator to finish them)")
    sessions = layout.find_sessions(root)
    if not sessions:
        folder_problems.append(f"{root}: no complete session folders (drone_*/rover_* with a meta.json)")
    real: dict[tuple[int, int], Path] = {}
    for s in sessions:
        st = s.stat()
        real.setdefault((st.st_dev, st.st_ino), s)
    twins = [s for s in sessions if real[(s.stat().st_dev, s.stat().st_ino)] != s]
    for twin in twins:
        folder_problems.append(f"{twin}: the same folder as {real[(twin.stat().st_dev, twin.stat().st_ino)].name} "
                               "(a link); training reads it once: remove the link")
    return [check_session(s) for s in sessions if s not in twins], folder_problems


def format_summary(checks: list[SessionCheck], folder_problems: list[str]) -> str:
    lines = [f"{'session':<34} {'frames':>6} {'occupied %':>10} {'empty':>5} {'lidar pts/frame':>15} "
             f"{'agents/frame':>12}  status"]
    total = np.zeros(labels.NUM_CLASSES, dtype=np.int64)
    voxels = 0
    for c in checks:
        occ_pct = 100.0 * (1 - c.class_voxels[labels.FREE] / c.total_voxels) if c.total_voxels else 0.0
        pts = c.lidar_points / c.frames if c.frames else 0
        agents = c.annotated_objects / c.frames if c.frames else 0
        lines.append(f"{c.path.name:<34} {c.frames:>6} {occ_pct:>10.2f} {c.empty_frames:>5} {pts:>15.0f} {agents:>12.1f}  "
                     f"{'ok' if not c.problems else f'{len(c.problems)} problem(s)'}")
        total += c.class_voxels
        voxels += c.total_voxels
    if voxels:
        shares = ", ".join(f"{labels.LABEL_NAMES[k]} {100 * total[k] / voxels:.3f}%"
                           for k in range(1, labels.NUM_CLASSES) if total[k])
        lines.append(f"class share of all voxels: {shares or 'none occupied'}")
    problems = folder_problems + [p for c in checks for p in c.problems]
    for p in problems[:50]:
        lines.append(f"PROBLEM {p}")
    if len(problems) > 50:
        lines.append(f"... and {len(problems) - 50} more problems")
    lines.append(f"{len(checks)} session(s), {sum(c.frames for c in checks)} frame(s), {len(problems)} problem(s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="occworld-tokyo validate", description=__doc__)
    parser.add_argument("data_root", type=Path, help="folder of sessions, e.g. data/tokyo_gazebo")
    args = parser.parse_args(argv)
    checks, folder_problems = validate(args.data_root)
    print(format_summary(checks, folder_problems))
    return 1 if folder_problems or any(c.problems for c in checks) else 0
