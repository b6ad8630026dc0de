"""Log a session or a forecast folder to a rerun recording (rerun-sdk, the optional `viz` extra).

Entities (world frame: the session's x east, y north, z up, metres; timeline `frame` = frame index and
`time` = seconds since the session start):
    <root>/trajectory            LineStrips3D: the ego's path (world, static)
    <root>/ego                   Transform3D per frame: the ego grid frame -> world (yaw only, z = ground_height)
    <root>/ego/occupancy         Points3D: centres of the occupied voxels (ego frame), class_ids = storage labels
                                 (names and colours from the AnnotationContext), radius = half a voxel, and the
                                 per-point value `instance_id` (PLATEAU object / agent id; 0 = none)
    <root>/ego/agents            Boxes3D: the moving agents (ego frame), labels '<kind> <id>', class_ids = labels
    <root>/ego/lidar             Points3D: the lidar returns (ego frame)
    <root>/ego/camera            Transform3D (camera -> ego) + Pinhole (K) ; <root>/ego/camera/image: EncodedImage
A session is logged under `session`; a forecast folder under `ground_truth` (the session's frames) and
`forecast` (the predicted occupancy), the latter shifted sideways by the grid's width plus 10 m so both are seen
side by side on the same timeline (ground truth: as many frames before the forecast as it predicts, then
the predicted frames the session holds; --frames overrides).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from occworld_tokyo import labels as L
from occworld_tokyo.export.frames import camera_to_ego
from occworld_tokyo.export.source import SourceSession, open_session
from occworld_tokyo.grid import EgoFrame, GridSpec
from occworld_tokyo.sessions import layout


def _rr():
    try:
        import rerun as rr
    except ImportError as exc:  # the optional extra
        raise RuntimeError("the viewer needs rerun-sdk: pip install 'occworld-tokyo[viz]' (or pip install "
                           "rerun-sdk)") from exc
    return rr


def annotation_context():
    rr = _rr()
    return rr.AnnotationContext([(l.id, l.name, tuple(l.color)) for l in L.LABELS])


def _set_time(rec, i: int, rate_hz: float) -> None:
    rec.set_time("frame", sequence=int(i))
    rec.set_time("time", duration=float(i) / float(rate_hz))


def _ego_transform(frame: EgoFrame, shift_y: float = 0.0):
    rr = _rr()
    c, s = np.cos(frame.yaw), np.sin(frame.yaw)
    return rr.Transform3D(translation=[frame.x, frame.y + shift_y, frame.ground_z],
                          mat3x3=[[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def occupancy_points(occ: np.ndarray, grid: GridSpec, instances: np.ndarray | None = None) -> list:
    """Points3D of the occupied voxels of one (X, Y, Z) label grid, in the grid's ego frame, plus (when given)
    each voxel's instance id as the per-point value `instance_id` (shown when a voxel is selected)."""
    rr = _rr()
    idx = np.argwhere(occ > 0)
    centres = grid.lower + (idx + 0.5) * np.asarray(grid.voxel_size)
    out = [rr.Points3D(centres.astype(np.float32), class_ids=occ[tuple(idx.T)].astype(np.uint16),
                       radii=float(min(grid.voxel_size)) / 2)]
    if instances is not None:
        out.append(rr.AnyValues(instance_id=instances[tuple(idx.T)].astype(np.int32)))
    return out


def agent_boxes(objects: list[dict]):
    rr = _rr()
    if not objects:
        return rr.Boxes3D(centers=np.zeros((0, 3)), half_sizes=np.zeros((0, 3)))
    return rr.Boxes3D(centers=[o["center"] for o in objects], half_sizes=[np.asarray(o["size"]) / 2 for o in objects],
                      rotation_axis_angles=[rr.RotationAxisAngle(axis=[0, 0, 1], radians=float(o["yaw"])) for o in objects],
                      labels=[f"{o.get('kind', o.get('class'))} {o['id']}" for o in objects],
                      class_ids=[int(o.get("label", L.OTHER)) for o in objects])


def log_session_frames(rec, s: SourceSession, frames: range, root: str) -> None:
    rr = _rr()
    pos = s.poses["position"]
    rec.log(f"{root}/trajectory", rr.LineStrips3D([pos[frames.start:frames.stop]]), static=True)
    cam = (s.meta.get("sensors") or {}).get("camera")
    if cam:
        rec.log(f"{root}/ego/camera", rr.Pinhole(image_from_camera=np.asarray(cam["intrinsics"]["K"]),
                                                width=cam["width"], height=cam["height"],
                                                camera_xyz=rr.ViewCoordinates.RDF), static=True)
    for i in frames:
        _set_time(rec, i, s.info.rate_hz)
        fr = s.frames[i]
        rec.log(f"{root}/ego", _ego_transform(fr))
        arr = s.occupancy(i)
        rec.log(f"{root}/ego/occupancy", *occupancy_points(arr["occupancy"], s.info.grid, arr["instances"]))
        rec.log(f"{root}/ego/agents", agent_boxes(s.objects(i)))
        pts = s.lidar(i)
        if pts is not None:
            rec.log(f"{root}/ego/lidar", rr.Points3D(pts[:, :3], radii=0.05))
        img = s.image_path(i)
        if cam and img is not None:
            T = camera_to_ego(fr, pos[i], s.poses["quat"][i], cam["extrinsics"]["T_body_cam"])
            rec.log(f"{root}/ego/camera", rr.Transform3D(translation=T[:3, 3], mat3x3=T[:3, :3]))
            rec.log(f"{root}/ego/camera/image", rr.EncodedImage(path=img))


def parse_frames(text: str | None, n: int) -> range:
    """'a:b' (python slice, either side optional) -> the frame range, checked against the n frames."""
    if not text:
        return range(n)
    try:
        a, b = (part.strip() for part in text.split(":"))
        lo = int(a) if a else 0
        hi = int(b) if b else n
    except ValueError as exc:
        raise ValueError(f"--frames must look like a:b, e.g. 0:20 (got {text!r})") from exc
    lo, hi = max(0, lo if lo >= 0 else n + lo), min(n, hi if hi >= 0 else n + hi)
    if hi <= lo:
        raise ValueError(f"--frames {text} selects no frame of the {n} available")
    return range(lo, hi)


def is_forecast(path: Path) -> bool:
    meta = path / "meta.json"
    if not meta.is_file():
        return False
    try:
        return "checkpoint" in json.loads(meta.read_text())
    except ValueError:
        return False


def record(path: str | Path, rec, frames: str | None = None) -> dict:
    """Log the session or forecast folder at `path` into the recording `rec`; returns what was logged."""
    rr = _rr()
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path} is not a folder: give a session folder (with meta.json) or a forecast --out folder")
    rec.log("/", annotation_context(), static=True)
    rec.log("/", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
    if not is_forecast(path):
        s = open_session(path)
        rng = parse_frames(frames, s.n)
        log_session_frames(rec, s, rng, "session")
        return {"kind": "session", "frames": list(rng)}
    meta = json.loads((path / "meta.json").read_text())
    s = open_session(Path(meta["session"]))
    pred = [int(f) for f in meta["frames"]]
    # ground truth: as many frames before the forecast as it predicts, and the predicted ones the session has
    history = (range(max(0, pred[0] - len(pred)), min(s.n, pred[-1] + 1)) if frames is None
               else parse_frames(frames, s.n))
    log_session_frames(rec, s, history, "ground_truth")
    grid = GridSpec.from_dict(meta["grid"])
    shift = (grid.y_range[1] - grid.y_range[0]) + 10.0
    for i in pred:
        if i not in history:
            continue
        _set_time(rec, i, s.info.rate_hz)
        with np.load(layout.occupancy_path(path, i)) as npz:
            occ = npz["occupancy"]
        pose = json.loads(layout.pose_path(path, i).read_text())
        fr = s.frames[i]
        rec.log("forecast/ego", _ego_transform(fr, shift_y=shift))
        rec.log("forecast/ego/occupancy", *occupancy_points(occ, grid))
        p = pose["position"]
        rec.log("forecast/predicted_position", rr.Points3D([[p["x"], p["y"] + shift, p["z"]]], radii=0.5))
    return {"kind": "forecast", "frames": list(history), "predicted": pred}
