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
from occworld_tokyo.sessions.coverage import STATIC_KINDS, SessionCoverage, coverage_meta_problem

# Ranges of the numbers a session stores (docs/data_format.md), checked wherever a meta.json or pose JSON is read
# (`validate`, the training's data check, `dataset.read_session`): a value outside them is a damaged or hand-edited
# file, named with its field, never a traceback or NaN mid-run. Positions are city-local metres (a PLATEAU city's
# plane-rectangular extent is a few hundred km); speeds cover any drone or vehicle; a session holds at most
# MAX_FRAMES frames.
MAX_FRAMES = 10_000_000
MAX_RATE_HZ = 1000.0
DEFAULT_RATE_HZ = 2.0  # meta.json without rate_hz (docs/data_format.md)
MAX_POSITION_M = 1.0e6
MAX_GROUND_M = 1.0e4
MAX_SPEED_M_S = 1000.0
MAX_TURN_RAD_S = 100.0
MAX_TIMESTAMP_S = 1.0e10  # seconds since the session start (docs/data_format.md); also covers Unix seconds


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def read_json(path: Path):
    """(the parsed JSON, None) or (None, what is wrong): unreadable, not UTF-8, not JSON (NaN / Infinity refused)."""
    def refuse(name: str):
        raise ValueError(f"{name} is not a JSON number")

    try:
        return json.loads(path.read_bytes().decode("utf-8"), parse_constant=refuse), None
    except OSError as exc:
        return None, f"unreadable ({exc})"
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {exc.start}: {exc.reason})"
    except RecursionError:
        return None, "JSON nested too deeply"
    except ValueError as exc:  # JSONDecodeError, NaN / Infinity
        return None, f"not valid JSON ({exc})"


def meta_problem(meta) -> str | None:
    """What is wrong with the fields of a session's meta.json that reading it uses, naming the field; or None.
    `n_frames` a whole number in 1..MAX_FRAMES, `rate_hz` a finite number in (0, MAX_RATE_HZ], `agent_type` a
    non-empty string (both when present: reading takes 2 Hz and the folder name's prefix otherwise; `validate`
    requires them), `grid` (when present) finite ranges with min < max and voxel sizes > 0 whose `shape` agrees."""
    if not isinstance(meta, dict):
        return "not a JSON object"
    n = meta.get("n_frames")
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_FRAMES:
        return f"field 'n_frames' = {_short(n)} must be a whole number in 1..{MAX_FRAMES}"
    rate = meta.get("rate_hz", DEFAULT_RATE_HZ)
    if not _number(rate) or not 0 < rate <= MAX_RATE_HZ:
        return f"field 'rate_hz' = {_short(rate)} must be a number in (0, {MAX_RATE_HZ:g}] (frames per second)"
    agent = meta.get("agent_type", "drone")
    if not isinstance(agent, str) or not agent:
        return f"field 'agent_type' = {_short(agent)} must be a non-empty string (drone / rover)"
    if "grid" not in meta:
        return None
    grid = meta["grid"]
    if not isinstance(grid, dict):
        return f"field 'grid' = {_short(grid)} must be an object"
    for key in ("x_range", "y_range", "z_range"):
        r = grid.get(key)
        if not (isinstance(r, list) and len(r) == 2 and all(map(_number, r)) and r[0] < r[1]):
            return f"field 'grid.{key}' = {_short(r)} must be [min, max] with finite numbers, min < max (m)"
    v = grid.get("voxel_size")
    if not (isinstance(v, list) and len(v) == 3 and all(map(_number, v)) and min(v) > 0):
        return f"field 'grid.voxel_size' = {_short(v)} must be 3 finite numbers > 0 (m)"
    level = grid.get("ground_level", 1)
    if not isinstance(level, int) or isinstance(level, bool) or level < 0:
        return f"field 'grid.ground_level' = {_short(level)} must be a whole number >= 0"
    shape = grid.get("shape")
    if shape is not None and not (isinstance(shape, list) and len(shape) == 3
                                  and all(isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in shape)):
        return f"field 'grid.shape' = {_short(shape)} must be 3 whole numbers > 0"
    return None


_POSE_LIMITS = (("position", "xyz", MAX_POSITION_M, "m"), ("orientation", "xyzw", math.inf, ""),
                ("velocity.linear", "xyz", MAX_SPEED_M_S, "m/s"), ("velocity.angular", "xyz", MAX_TURN_RAD_S, "rad/s"))


def pose_value_problem(pose) -> str | None:
    """What is wrong with the numbers of one pose JSON (docs/data_format.md), naming the field; or None. Each of
    position x, y, z, orientation x, y, z, w (a unit quaternion), velocity.linear / velocity.angular x, y, z,
    ground_height and timestamp (when present) a finite number within the ranges above."""
    if not isinstance(pose, dict):
        return "not a JSON object"
    for dotted, keys, limit, unit in _POSE_LIMITS:
        node = pose
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return f"field '{dotted}' must be an object with numbers {', '.join(keys)}"
        for k in keys:
            v = node.get(k)
            if not _number(v):
                return f"field '{dotted}.{k}' = {_short(v)} must be a finite number"
            if abs(v) > limit:  # orientation: no bound of its own, the unit norm below bounds it
                return f"field '{dotted}.{k}' = {v:g} is outside -{limit:g}..{limit:g} {unit}"
    norm = math.sqrt(sum(pose["orientation"][k] ** 2 for k in "xyzw"))
    if abs(norm - 1.0) > 1e-3:
        return f"field 'orientation' is not a unit quaternion (norm {norm:.4f})"
    for key, limit in (("ground_height", MAX_GROUND_M), ("timestamp", MAX_TIMESTAMP_S)):
        if key in pose:
            v = pose[key]
            if not _number(v):
                return f"field '{key}' = {_short(v)} must be a finite number"
            if abs(v) > limit:
                return f"field '{key}' = {v:g} is outside -{limit:g}..{limit:g}"
    return None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


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
    coverage: SessionCoverage = field(default_factory=SessionCoverage)  # frames with input objects per label
    region_objects: dict = field(default_factory=dict)  # meta.json city.objects: label name -> objects in its area
    total_voxels: int = 0
    empty_frames: int = 0
    lidar_points: int = 0
    annotated_objects: int = 0

    def problem(self, file: Path | str, message: str) -> None:
        self.problems.append(f"{file}: {message}")


def _check_pose(check: SessionCheck, path: Path, i: int, agent: str) -> float | None:
    pose, unreadable = read_json(path)
    if unreadable:
        check.problem(path, unreadable)
        return None
    if not isinstance(pose, dict):
        check.problem(path, "pose JSON is not a JSON object")
        return None
    for key in POSE_SCHEMA:
        if key not in pose:
            check.problem(path, f"missing field '{key}'")
            return None
    problem = pose_value_problem(pose)  # also velocity.linear / velocity.angular
    if problem:
        check.problem(path, problem)
        return None
    if pose["frame"] != i:
        check.problem(path, f"field 'frame' is {_short(pose['frame'])}, expected {i}")
    if pose["agent_type"] != agent:
        check.problem(path, f"field 'agent_type' is {_short(pose['agent_type'])}, meta.json says {agent!r}")
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
            inst = npz["instances"]
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
    if inst.shape == occ.shape:
        check.coverage.add(occ, inst)
    check.class_voxels += counts
    check.total_voxels += occ.size
    check.empty_frames += int(counts[labels.FREE] == occ.size)


ANNOTATION_KEYS = ("id", "class", "center", "size", "yaw", "velocity")


def _check_annotations(check: SessionCheck, path: Path, i: int) -> None:
    record, unreadable = read_json(path)
    if unreadable:
        check.problem(path, f"annotations JSON {unreadable}")
        return
    if not isinstance(record, dict) or record.get("frame") != i or not isinstance(record.get("objects"), list):
        check.problem(path, "annotations need 'frame' (this frame's index) and an 'objects' list")
        return
    for obj in record["objects"]:
        if not isinstance(obj, dict):
            check.problem(path, f"annotation object {_short(obj)} is not a JSON object")
            return
        missing = [k for k in ANNOTATION_KEYS if k not in obj]
        if missing:
            check.problem(path, f"annotation object {_short(obj.get('id'))} misses field(s) {missing}")
            return
        center, size = obj["center"], obj["size"]
        if not (isinstance(center, list) and len(center) == 3 and all(map(_number, center))
                and isinstance(size, list) and len(size) == 3 and all(map(_number, size)) and min(size) > 0):
            check.problem(path, f"annotation object {_short(obj['id'])}: 'center' and 'size' need 3 finite numbers, "
                                "sizes > 0")
            return
    check.annotated_objects += len(record["objects"])


def _check_sensors(check: SessionCheck, session: Path, i: int) -> None:
    lp = layout.lidar_path(session, i)
    if not lp.is_file():
        check.problem(lp, "missing lidar file")
    else:
        try:
            pts = np.load(lp, allow_pickle=False)
        except READ_ERRORS as exc:
            pts = f"unreadable lidar file ({exc})"
        if not isinstance(pts, np.ndarray):
            check.problem(lp, pts if isinstance(pts, str) else "lidar file is not one .npy array")
        elif pts.ndim != 2 or pts.shape[1] != 4 or pts.dtype != np.float32:
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
    meta, unreadable = read_json(session / "meta.json")
    if unreadable:
        check.problem(session / "meta.json", unreadable)
        return check
    for key in ("agent_type", "n_frames", "rate_hz", "grid", "labels"):
        if not isinstance(meta, dict) or key not in meta:
            check.problem(session / "meta.json", f"missing field '{key}'")
    if check.problems:
        return check
    problem = meta_problem(meta) or (None if isinstance(meta["grid"].get("shape"), list)
                                     else "missing field 'grid.shape'")
    if problem is None and "coverage" in meta:
        problem = coverage_meta_problem(meta["coverage"], meta["n_frames"])
    if problem:
        check.problem(session / "meta.json", f"{problem}; regenerate this session")
        return check
    n, rate, agent = meta["n_frames"], float(meta["rate_hz"]), meta["agent_type"]
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
    objects = meta.get("city", {}).get("objects") if isinstance(meta.get("city"), dict) else None
    check.region_objects = objects if isinstance(objects, dict) else {}
    if "coverage" in meta and check.frames == n and not check.problems:
        recorded = meta["coverage"]["frames_with"]
        found = check.coverage.to_meta()["frames_with"]
        wrong = [f"{k}: meta.json {recorded[k]}, frames {found.get(k)}" for k in recorded if recorded[k] != found.get(k)]
        if wrong:
            check.problem(session / "meta.json", f"field 'coverage.frames_with' disagrees with the frames ({'; '.join(wrong[:3])}); "
                                                 "regenerate this session")
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


def coverage_lines(checks: list[SessionCheck]) -> list[str]:
    """Frames showing input objects of each label over all sessions (sessions/coverage.py), and a WARNING for each
    label whose objects the sessions' areas held (meta.json city.objects) but no frame shows. Warnings, not
    problems: the data is well formed, it just lacks that content."""
    frames = sum(c.frames for c in checks)
    if not frames:
        return []
    shown = sum((c.coverage.frames for c in checks), np.zeros(labels.NUM_CLASSES, dtype=np.int64))
    held = {labels.LABEL_NAMES[k]: sum(int(c.region_objects.get(labels.LABEL_NAMES[k], 0) or 0) > 0 for c in checks)
            for k in STATIC_KINDS}
    kinds = [k for k in STATIC_KINDS if shown[k] or held[labels.LABEL_NAMES[k]]]
    lines = ["frames showing input objects: " + (", ".join(f"{labels.LABEL_NAMES[k]} {shown[k]}/{frames}"
                                                           for k in kinds) or "none")]
    for k in kinds:
        name = labels.LABEL_NAMES[k]
        if not shown[k]:
            lines.append(f"WARNING: {name}: {held[name]} session area(s) hold {name} objects but no frame shows one "
                         "(generate more or longer sessions, or another --agent / --region)")
    return lines


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
    lines += coverage_lines(checks)
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
