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

Every coordinate is a JSON number (not a boolean, not NaN or Infinity) and the path is one an agent can follow:
no step between consecutive frames (the first from the current pose) nor recorded velocity faster than
`MAX_PLAN_SPEED` m/s, nor a turn faster than `MAX_PLAN_TURN` rad/s, so a plan in millimetres or with a wild value
is refused naming the entry, before the model runs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from occworld_tokyo.dataset.poses import pose_arrays, relative_poses
from occworld_tokyo.errors import UserError
from occworld_tokyo.rotations import quat_from_euler, wrap_angle


MAX_PLAN_SPEED = 50.0  # m/s (180 km/h): above every agent of the sessions (drones <= 15, vehicles <= 20 m/s)
MAX_PLAN_TURN = 2 * np.pi  # rad/s of recorded angular velocity


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
        doc = json.loads(path.read_text(), parse_constant=_no_constant)
    except FileNotFoundError:
        raise PlanFileError(f"plan file {path} does not exist; give a JSON plan file or `--plan recorded`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
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
            if not (isinstance(w, (list, tuple)) and len(w) == 3 and all(_is_number(v) for v in w)):
                raise _fail(path, f"waypoints[{k}] = {w!r} is not [x, y, z] in metres (three finite numbers)")
            pts.append(w)
        pts = np.asarray(pts, dtype=np.float64)
        _check_steps(path, "waypoints", pts, np.zeros(3), rate_hz)
        return waypoints_to_poses(pts, rate_hz)
    for k, rec in enumerate(entries):
        for field, names in (("position", "xyz"), ("orientation", "xyzw"), ("velocity.linear", "xyz"),
                             ("velocity.angular", "xyz")):
            part = rec
            for step in field.split("."):
                part = part.get(step) if isinstance(part, dict) else None
            if not isinstance(part, dict) or any(n not in part for n in names):
                raise _fail(path, f"poses[{k}] lacks {field} {'/'.join(names)} (needs position x/y/z, orientation "
                            "x/y/z/w, velocity linear/angular x/y/z)")
            bad = [n for n in names if not _is_number(part[n])]
            if bad:
                raise _fail(path, f"poses[{k}].{field}.{bad[0]} = {part[bad[0]]!r} is not a finite number")
    arrays = pose_arrays(list(history_records) + list(entries))
    if not np.isfinite(arrays["position"]).all() or not np.isfinite(arrays["quat"]).all():
        raise _fail(path, "poses must be finite numbers")
    norms = np.linalg.norm(arrays["quat"], axis=1)
    if (np.abs(norms - 1.0) > 1e-3).any():
        k = int(np.argmax(np.abs(norms - 1.0))) - len(history_records)
        raise _fail(path, f"poses[{k}].orientation is not a unit quaternion (norm {norms[k + len(history_records)]:.4f})")
    h = len(history_records)
    _check_steps(path, "poses", arrays["position"][h:], arrays["position"][h - 1], rate_hz)
    for name, values, limit, unit in (("velocity.linear", arrays["lin_vel"][h:], MAX_PLAN_SPEED, "m/s"),
                                      ("velocity.angular", arrays["ang_vel"][h:], MAX_PLAN_TURN, "rad/s")):
        norm = np.linalg.norm(values, axis=1)
        if (norm > limit).any():
            k = int(np.argmax(norm))
            raise _fail(path, f"poses[{k}].{name} is {norm[k]:.4g} {unit}, above the {limit:.3g} {unit} an agent "
                        "reaches: give it in m/s and rad/s")
    return relative_poses(arrays, h - 1)[h:]


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows: give finite numbers")


def _is_number(v: object) -> bool:
    """A finite JSON number: int or float, not a bool (True would read as 1 m)."""
    if type(v) not in (int, float):  # bool is a subclass of int: refused here
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer too large for a float
        return False


def _check_steps(path: Path, key: str, pts: np.ndarray, start: np.ndarray, rate_hz: float) -> None:
    """Refuse a step (from the current pose to entry 0, then between entries) faster than MAX_PLAN_SPEED."""
    diffs = np.diff(np.vstack([start[None], pts]), axis=0)
    steps = np.array([math.hypot(*d) for d in diffs.tolist()])  # no overflow for 1e300
    with np.errstate(over="ignore"):
        fast = ~np.isfinite(steps * rate_hz) | (steps * rate_hz > MAX_PLAN_SPEED)
    if fast.any():
        k = int(np.argmax(fast))  # the first one
        speed = steps * rate_hz
        frm = "the current pose" if k == 0 else f"{key}[{k - 1}]"
        raise _fail(path, f"{key}[{k}] is {steps[k]:.4g} m from {frm}, {speed[k]:.4g} m/s at {rate_hz:g} Hz, "
                    f"faster than any agent ({MAX_PLAN_SPEED:g} m/s): give positions in metres, one per "
                    f"{1.0 / rate_hz:g} s frame")
