"""Plan files: the path a planner wants the world model to forecast along (`occworld-tokyo forecast --plan FILE`).

One JSON file, one of two forms; one entry per predicted frame, at the session's frame rate (entry k is the
frame k + 1 steps after the current frame). Extra entries are ignored; fewer than the model predicts is an error.

1. Waypoints in the current ego frame (the grid frame of the current = last history frame: origin at the agent,
   x forward, y left, z up, metres, yaw-only so gravity-aligned):

       {"frame": "ego", "waypoints": [[x, y, z], ...]}

   Orientation is taken along the path (yaw of each step's direction; the last history pose's yaw while a step is
   shorter than 1 cm), roll and pitch zero; linear velocity = step / frame period; angular velocity = yaw change /
   frame period (about z).

2. Full poses in the session's world frame, the schema of the session's `poses/NNNNNN.json` (position, orientation
   xyzw body -> world, velocity.linear / velocity.angular in the world frame):

       {"frame": "world", "poses": [{"position": {...}, "orientation": {...}, "velocity": {...}}, ...]}

   (a bare list of such records is read the same way). `occworld-tokyo forecast --plan recorded` uses the session's
   own recorded future poses.

Both become the model's 13-d poses relative to the current frame (`dataset/poses.py`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from occworld_tokyo.dataset.poses import pose_arrays, relative_poses
from occworld_tokyo.errors import UserError
from occworld_tokyo.rotations import quat_from_euler, wrap_angle


class PlanFileError(UserError):
    """A plan file that cannot be read; the message names the file, the entry and the fix."""


def waypoints_to_poses(waypoints: np.ndarray, rate_hz: float) -> np.ndarray:
    """(N, 3) waypoints (m) in the current ego frame -> (N, 13) poses relative to the current frame (module
    docstring, form 1). The current frame is at the origin with yaw 0."""
    pts = np.asarray(waypoints, dtype=np.float64)
    prev = np.vstack([np.zeros((1, 3)), pts[:-1]])
    step = pts - prev
    yaw = np.zeros(len(pts))
    last = 0.0
    for k, (dx, dy) in enumerate(step[:, :2]):
        if np.hypot(dx, dy) >= 0.01:
            last = float(np.arctan2(dy, dx))
        yaw[k] = last
    dyaw = wrap_angle(np.diff(np.concatenate([[0.0], yaw])))
    quat = quat_from_euler(yaw, 0.0, 0.0)  # yaw only, w >= 0
    lin = step * rate_hz
    ang = np.zeros((len(pts), 3))
    ang[:, 2] = dyaw * rate_hz
    return np.concatenate([pts, quat, lin, ang], axis=1).astype(np.float32)


def _fail(path: Path, what: str) -> PlanFileError:
    return PlanFileError(f"plan file {path}: {what} (format: occworld_tokyo/dataset/plan_file.py; e.g. "
                         '{"frame": "ego", "waypoints": [[2.0, 0.0, 0.0], [4.0, 0.5, 0.0]]})')


def read_plan(path: str | Path, history_records: list[dict], n_future: int, rate_hz: float) -> np.ndarray:
    """The plan of `path` as (n_future, 13) poses relative to the current frame = the last of `history_records`
    (the session's pose records of the history frames, world frame)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise PlanFileError(f"plan file {path} does not exist; give a JSON plan file or `--plan recorded`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"not readable JSON ({exc})") from None
    if isinstance(doc, list):
        doc = {"frame": "world", "poses": doc}
    if not isinstance(doc, dict) or doc.get("frame") not in ("ego", "world"):
        raise _fail(path, 'needs "frame": "ego" (with "waypoints") or "world" (with "poses")')
    key = "waypoints" if doc["frame"] == "ego" else "poses"
    entries = doc.get(key)
    if not isinstance(entries, list):
        raise _fail(path, f'"frame": "{doc["frame"]}" needs a list "{key}"')
    if len(entries) < n_future:
        raise _fail(path, f'{len(entries)} {key} but the model forecasts {n_future} frames: give one entry per '
                    f"predicted frame ({1.0 / rate_hz:g} s apart)")
    entries = entries[:n_future]
    if key == "waypoints":
        pts = []
        for k, w in enumerate(entries):
            if not (isinstance(w, (list, tuple)) and len(w) == 3 and all(isinstance(v, (int, float)) for v in w)):
                raise _fail(path, f"waypoints[{k}] = {w!r} is not [x, y, z] in metres")
            pts.append(w)
        pts = np.asarray(pts, dtype=np.float64)
        if not np.isfinite(pts).all():
            raise _fail(path, "waypoints must be finite numbers")
        return waypoints_to_poses(pts, rate_hz)
    for k, rec in enumerate(entries):
        try:
            pose_arrays([rec])
        except (KeyError, TypeError) as exc:
            raise _fail(path, f"poses[{k}] lacks {exc} (needs position x/y/z, orientation x/y/z/w, velocity "
                        "linear/angular x/y/z)") from None
    arrays = pose_arrays(list(history_records) + list(entries))
    if not np.isfinite(arrays["position"]).all() or not np.isfinite(arrays["quat"]).all():
        raise _fail(path, "poses must be finite numbers")
    norms = np.linalg.norm(arrays["quat"], axis=1)
    if (np.abs(norms - 1.0) > 1e-3).any():
        k = int(np.argmax(np.abs(norms - 1.0))) - len(history_records)
        raise _fail(path, f"poses[{k}].orientation is not a unit quaternion (norm {norms[k + len(history_records)]:.4f})")
    return relative_poses(arrays, len(history_records) - 1)[len(history_records):]
