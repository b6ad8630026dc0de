"""Pure rigid-body kinematics helpers shared by the drone and rover planners (and their tests).

Conventions (the same as `trajectory.py`):
- quaternions are (x, y, z, w), scalar last, and rotate body -> world;
- Euler angles are intrinsic Z-Y-X (yaw, then pitch, then roll): R = Rz(yaw) @ Ry(pitch) @ Rx(roll);
  with body x forward, y left, z up, a *positive pitch puts the nose down* and a *positive roll raises
  the left side* (right side down; right-hand rule about +y and +x);
- angular velocities are world-frame vectors (rad/s).

Nothing here knows about worlds or planners: these are small numpy functions on arrays.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = [
    "quat_from_euler",
    "euler_from_quat",
    "quat_multiply",
    "quat_conjugate",
    "quat_rotate",
    "quat_to_matrix",
    "quat_canonical",
    "angular_velocity_from_euler",
    "angular_velocity_from_quats",
    "unwrap_yaw",
    "wrap_angle",
    "central_difference",
    "frame_velocity_differences",
    "frame_angular_velocity_differences",
]


def quat_from_euler(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Z-Y-X Euler angles (rad) -> (N, 4) quaternions xyzw, body -> world, with w >= 0."""
    yaw, pitch, roll = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (yaw, pitch, roll)))
    cy, sy = np.cos(yaw / 2), np.sin(yaw / 2)
    cp, sp = np.cos(pitch / 2), np.sin(pitch / 2)
    cr, sr = np.cos(roll / 2), np.sin(roll / 2)
    q = np.stack(
        [
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
            cr * cp * cy + sr * sp * sy,
        ],
        axis=-1,
    )
    return quat_canonical(q)


def quat_canonical(q: np.ndarray) -> np.ndarray:
    """Unit quaternions with w >= 0 (q and -q are the same rotation; this picks one)."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., 3:4] < 0, -q, q)


def euler_from_quat(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 4) xyzw -> (yaw, pitch, roll), the inverse of `quat_from_euler` for |pitch| < 90 deg."""
    x, y, z, w = np.moveaxis(np.asarray(q, dtype=np.float64), -1, 0)
    yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    pitch = np.arcsin(np.clip(2 * (w * y - z * x), -1.0, 1.0))
    roll = np.arctan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    return yaw, pitch, roll


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b of xyzw quaternions (rotation b first, then a)."""
    ax, ay, az, aw = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bx, by, bz, bw = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        axis=-1,
    )


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return np.concatenate([-q[..., :3], q[..., 3:]], axis=-1)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) xyzw -> (..., 3, 3) rotation matrices (body -> world)."""
    x, y, z, w = np.moveaxis(np.asarray(q, dtype=np.float64), -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], axis=-1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], axis=-1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1),
        ],
        axis=-2,
    )


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors (..., 3) by quaternions (..., 4) (body -> world)."""
    return np.einsum("...ij,...j->...i", quat_to_matrix(q), np.asarray(v, dtype=np.float64))


def angular_velocity_from_euler(
    yaw: np.ndarray, pitch: np.ndarray, yaw_rate: np.ndarray, pitch_rate: np.ndarray, roll_rate: np.ndarray
) -> np.ndarray:
    """World-frame angular velocity (N, 3) of R = Rz(yaw) Ry(pitch) Rx(roll) from the Euler-angle rates.

    omega = yaw_rate * e_z + pitch_rate * Rz(yaw) e_y + roll_rate * Rz(yaw) Ry(pitch) e_x.
    """
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    wx = -pitch_rate * sy + roll_rate * cy * cp
    wy = pitch_rate * cy + roll_rate * sy * cp
    wz = yaw_rate - roll_rate * sp
    return np.stack([wx, wy, wz], axis=-1)


def angular_velocity_from_quats(q0: np.ndarray, q1: np.ndarray, dt: float | np.ndarray) -> np.ndarray:
    """Mean world-frame angular velocity (N, 3) that turns q0 into q1 in time dt (rotation-vector log)."""
    dq = quat_canonical(quat_multiply(q1, quat_conjugate(q0)))  # world-frame increment
    v = dq[..., :3]
    sin_half = np.linalg.norm(v, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(sin_half, dq[..., 3:4])
    axis = np.divide(v, sin_half, out=np.zeros_like(v), where=sin_half > 1e-15)
    return axis * angle / np.asarray(dt, dtype=np.float64).reshape(-1, 1)


def unwrap_yaw(yaw: np.ndarray) -> np.ndarray:
    """Continuous yaw (no 2 pi jumps) for rate checks and plots."""
    return np.unwrap(np.asarray(yaw, dtype=np.float64))


def wrap_angle(a: np.ndarray) -> np.ndarray:
    """Angles into [-pi, pi)."""
    return (np.asarray(a, dtype=np.float64) + np.pi) % (2 * np.pi) - np.pi


def central_difference(f: Callable[[np.ndarray], np.ndarray], t: np.ndarray, h: float) -> np.ndarray:
    """(f(t + h) - f(t - h)) / 2h for a vectorised f of time."""
    t = np.asarray(t, dtype=np.float64)
    return (f(t + h) - f(t - h)) / (2.0 * h)


def frame_velocity_differences(t: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Central differences of positions at the interior frames, (N - 2, 3)."""
    t = np.asarray(t, dtype=np.float64)
    return (position[2:] - position[:-2]) / (t[2:] - t[:-2])[:, None]


def frame_angular_velocity_differences(t: np.ndarray, quat_xyzw: np.ndarray) -> np.ndarray:
    """World angular velocity from the quaternions of the neighbouring frames, interior frames (N - 2, 3)."""
    t = np.asarray(t, dtype=np.float64)
    return angular_velocity_from_quats(quat_xyzw[:-2], quat_xyzw[2:], t[2:] - t[:-2])
