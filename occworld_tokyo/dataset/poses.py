"""Poses for the world model: 13 numbers per frame, relative to the current frame.

The current frame is the last history frame. Its yaw-only ego frame (origin at the agent, x forward, y left,
z up, gravity aligned: the same frame as its occupancy grid, see `grid.EgoFrame`) is the reference:

    [0:3]   position       p_t - p_c rotated into the current ego frame (metres)
    [3:7]   orientation    q_yaw(c)^-1 * q_t, quaternion x, y, z, w (body -> current ego frame)
    [7:10]  linear velocity  rotated into the current ego frame (m/s)
    [10:13] angular velocity rotated into the current ego frame (rad/s)

So the current frame itself is (0, 0, 0, its roll/pitch only, its own velocities in its ego frame).
All functions are pure numpy; the rotation maths is `occworld_tokyo.rotations`.
"""

from __future__ import annotations

import numpy as np

from occworld_tokyo.grid import EgoFrame
from occworld_tokyo.rotations import quat_multiply, quat_yaw, rotate_yaw, yaw_quat

POSE_DIM = 13


def pose_arrays(records: list[dict]) -> dict[str, np.ndarray]:
    """Pose JSON records -> arrays position (T,3), quat (T,4), lin_vel (T,3), ang_vel (T,3), ground (T,)."""
    def xyz(d: dict) -> list[float]:
        return [d["x"], d["y"], d["z"]]

    return {
        "position": np.array([xyz(r["position"]) for r in records], dtype=np.float64),
        "quat": np.array([[r["orientation"][k] for k in "xyzw"] for r in records], dtype=np.float64),
        "lin_vel": np.array([xyz(r["velocity"]["linear"]) for r in records], dtype=np.float64),
        "ang_vel": np.array([xyz(r["velocity"]["angular"]) for r in records], dtype=np.float64),
        "ground": np.array([r.get("ground_height", 0.0) for r in records], dtype=np.float64),
    }


def ego_frames(arrays: dict[str, np.ndarray]) -> list[EgoFrame]:
    """The yaw-only grid frame of every record (what the ego-warp baseline and the figures need)."""
    yaw = quat_yaw(arrays["quat"])
    return [EgoFrame(float(p[0]), float(p[1]), float(a), float(g))
            for p, a, g in zip(arrays["position"], yaw, arrays["ground"])]


def relative_poses(arrays: dict[str, np.ndarray], current: int) -> np.ndarray:
    """(T, 13) float32 poses of all frames relative to frame `current` (layout in the module docstring)."""
    pos, quat = arrays["position"], arrays["quat"]
    yaw_c = float(quat_yaw(quat[current]))
    frame = EgoFrame(float(pos[current, 0]), float(pos[current, 1]), yaw_c, float(pos[current, 2]))
    rel_pos = frame.world_to_ego(pos)
    inv_yaw = yaw_quat(-yaw_c)
    rel_quat = quat_multiply(np.broadcast_to(inv_yaw, quat.shape), quat)
    rel_quat *= np.where(rel_quat[..., 3:4] < 0, -1.0, 1.0)  # one sign convention: w >= 0
    lin = frame.rotate_to_ego(arrays["lin_vel"])
    ang = frame.rotate_to_ego(arrays["ang_vel"])
    return np.concatenate([rel_pos, rel_quat, lin, ang], axis=-1).astype(np.float32)


def poses_to_world(rel: np.ndarray, current: EgoFrame, current_z: float) -> dict[str, np.ndarray]:
    """The inverse of `relative_poses` for (T, 13) poses relative to the frame `current` (its yaw-only ego frame,
    at world height current_z): world position (m), quaternion xyzw, linear (m/s) and angular (rad/s) velocity."""
    rel = np.asarray(rel, dtype=np.float64)
    ref = EgoFrame(current.x, current.y, current.yaw, current_z)
    quat = quat_multiply(np.broadcast_to(yaw_quat(current.yaw), rel[:, 3:7].shape), rel[:, 3:7])
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    return {"position": ref.ego_to_world(rel[:, :3]), "quat": quat,
            "lin_vel": rotate_yaw(rel[:, 7:10], current.yaw), "ang_vel": rotate_yaw(rel[:, 10:13], current.yaw)}
