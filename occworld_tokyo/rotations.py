"""Rotations and quaternions: the one home of the project's rotation maths (pure numpy).

Conventions, everywhere in the project:
- quaternions are (x, y, z, w), scalar last, and rotate body -> world (child -> parent);
- rotation matrices map vectors of the child frame into the parent frame (R_parent_child);
- Euler angles are intrinsic Z-Y-X: R = Rz(yaw) @ Ry(pitch) @ Rx(roll) (equivalently roll, then pitch, then yaw
  about the parent's fixed x, y, z axes); with body x forward, y left, z up a positive pitch puts the nose
  down and a positive roll raises the left side;
- angles in radians unless a name says _deg; angular velocities are world-frame vectors (rad/s);
- yaw is the rotation about world z; `rotate_yaw(v, yaw)` turns vectors by +yaw (ego -> world for an ego
  frame of that yaw), `rotate_yaw(v, -yaw)` back.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "quat_from_euler", "euler_from_quat", "quat_yaw", "yaw_quat", "quat_multiply", "quat_conjugate",
    "quat_canonical", "quat_to_matrix", "quat_from_matrix", "quat_rotate", "rpy_to_matrix", "rpy_deg_to_matrix", "rotate_yaw",
    "unit_quat_to_matrix", "rigid", "invert_rigid", "angular_velocity_from_euler", "angular_velocity_from_quats", "wrap_angle",
    "unwrap_yaw",
]


# ------------------------------------------------------------------------------------------------ quaternions
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


def quat_yaw(q_xyzw: np.ndarray) -> np.ndarray:
    """Yaw (rotation about world z, rad) of body -> world quaternions (..., 4). A torch tensor (the model's pose
    vectors) gives a tensor of its dtype, keeping autograd; anything else float64 numpy."""
    if type(q_xyzw).__module__.startswith("torch"):
        import torch

        x, y, z, w = q_xyzw.unbind(-1)
        return torch.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    q = np.asarray(q_xyzw, dtype=np.float64)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def yaw_quat(yaw: float) -> np.ndarray:
    """The x, y, z, w quaternion of a rotation by `yaw` (rad) about z."""
    return np.array([0.0, 0.0, np.sin(yaw / 2.0), np.cos(yaw / 2.0)])


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b of xyzw quaternions (rotation b first, then a; broadcasting)."""
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
    """The inverse rotation of unit quaternions (..., 4)."""
    q = np.asarray(q, dtype=np.float64)
    return np.concatenate([-q[..., :3], q[..., 3:]], axis=-1)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) xyzw -> (..., 3, 3) rotation matrices (body -> world); the input is taken as unit length
    (see `unit_quat_to_matrix` for one quaternion of any length)."""
    x, y, z, w = np.moveaxis(np.asarray(q, dtype=np.float64), -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], axis=-1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], axis=-1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1),
        ],
        axis=-2,
    )


def unit_quat_to_matrix(quat_xyzw: np.ndarray) -> np.ndarray:
    """One quaternion (x, y, z, w) of any non-zero length -> (3, 3) rotation matrix (normalised first)."""
    q = np.asarray(quat_xyzw, dtype=np.float64).reshape(4)
    n = np.linalg.norm(q)
    if not np.isfinite(n) or n == 0.0:
        raise ValueError(f"invalid quaternion {q}")
    x, y, z, w = q / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def quat_from_matrix(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 4) xyzw unit quaternions with w >= 0 (inverse of quat_to_matrix)."""
    m = np.asarray(m, dtype=np.float64)
    # the four candidate squared magnitudes; take the largest for numerical stability (Shepperd)
    t = np.stack([1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2], 1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2],
                  1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2], 1 + m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]], -1)
    k = np.argmax(t, axis=-1)
    s = 0.5 / np.sqrt(np.maximum(np.take_along_axis(t, k[..., None], -1)[..., 0], 1e-300))
    d = {  # xyzw for each choice of the largest component
        0: (0.25 / s, (m[..., 0, 1] + m[..., 1, 0]) * s, (m[..., 0, 2] + m[..., 2, 0]) * s, (m[..., 2, 1] - m[..., 1, 2]) * s),
        1: ((m[..., 0, 1] + m[..., 1, 0]) * s, 0.25 / s, (m[..., 1, 2] + m[..., 2, 1]) * s, (m[..., 0, 2] - m[..., 2, 0]) * s),
        2: ((m[..., 0, 2] + m[..., 2, 0]) * s, (m[..., 1, 2] + m[..., 2, 1]) * s, 0.25 / s, (m[..., 1, 0] - m[..., 0, 1]) * s),
        3: ((m[..., 2, 1] - m[..., 1, 2]) * s, (m[..., 0, 2] - m[..., 2, 0]) * s, (m[..., 1, 0] - m[..., 0, 1]) * s, 0.25 / s),
    }
    q = np.zeros(m.shape[:-2] + (4,))
    for c, comps in d.items():
        sel = k == c
        q[sel] = np.stack(comps, -1)[sel]
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., 3:] < 0, -q, q)


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors (..., 3) by quaternions (..., 4) (body -> world)."""
    return np.einsum("...ij,...j->...i", quat_to_matrix(q), np.asarray(v, dtype=np.float64))


# ------------------------------------------------------------------------------------------------ matrices
def rpy_to_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Euler angles in radians -> Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    cr, sr = np.cos(roll), np.sin(roll)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


def rpy_deg_to_matrix(rpy_deg: tuple[float, float, float]) -> np.ndarray:
    """Euler angles in degrees (roll, pitch, yaw) -> rotation matrix."""
    r, p, y = np.deg2rad(np.asarray(rpy_deg, dtype=np.float64))
    return rpy_to_matrix(float(r), float(p), float(y))


def rotate_yaw(vectors: np.ndarray, yaw: float) -> np.ndarray:
    """Vectors (..., 3) turned by `yaw` (rad) about z: (c x - s y, s x + c y, z)."""
    v = np.asarray(vectors, dtype=np.float64)
    c, s = np.cos(yaw), np.sin(yaw)
    return np.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1], v[..., 2]], axis=-1)


def rigid(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """(3, 3) rotation and (3,) translation (m) -> (4, 4) homogeneous transform."""
    t = np.eye(4)
    t[:3, :3] = rotation
    t[:3, 3] = np.asarray(translation, dtype=np.float64).reshape(3)
    return t


def invert_rigid(transform: np.ndarray) -> np.ndarray:
    """Inverse of a (4, 4) rigid transform without a general matrix inverse."""
    r = transform[:3, :3]
    return rigid(r.T, -r.T @ transform[:3, 3])


# ------------------------------------------------------------------------------------------------ rates, angles
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


def wrap_angle(a: np.ndarray) -> np.ndarray:
    """Angles into [-pi, pi)."""
    return (np.asarray(a, dtype=np.float64) + np.pi) % (2 * np.pi) - np.pi


def unwrap_yaw(yaw: np.ndarray) -> np.ndarray:
    """Continuous yaw (no 2 pi jumps) for rate checks and plots."""
    return np.unwrap(np.asarray(yaw, dtype=np.float64))
