"""Poses for the world model: 13 numbers per frame, relative to the current frame.

The current frame is the last history frame. Its yaw-only ego frame (origin at the agent, x forward, y left,
z up, gravity aligned: the same frame as its occupancy grid, see `grid.EgoFrame`) is the reference:

    [0:3]   position       p_t - p_c rotated into the current ego frame (metres)
    [3:7]   orientation    q_yaw(c)^-1 * q_t, quaternion x, y, z, w (body -> current ego frame)
    [7:10]  linear velocity  rotated into the current ego frame (m/s)
    [10:13] angular velocity rotated into the current ego frame (rad/s)

So the current frame itself is (0, 0, 0, its roll/pitch only, its own velocities in its ego frame).
All functions are pure numpy.
"""

from __future__ import annotations

import numpy as np

from occworld_tokyo.grid import EgoFrame

POSE_DIM = 13


def quat_yaw(q_xyzw: np.ndarray) -> np.ndarray:
    """Yaw (rotation about world z) of body -> world quaternions (..., 4) in x, y, z, w order."""
    q = np.asarray(q_xyzw, dtype=np.float64)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b of quaternions in x, y, z, w order (broadcasting)."""
    ax, ay, az, aw = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bx, by, bz, bw = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack([
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ], axis=-1)


def yaw_quat(yaw: float) -> np.ndarray:
    """The x, y, z, w quaternion of a rotation by `yaw` about z."""
    return np.array([0.0, 0.0, np.sin(yaw / 2.0), np.cos(yaw / 2.0)])


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
