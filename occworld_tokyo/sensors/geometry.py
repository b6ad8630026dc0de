"""Small rigid-body helpers shared by the sensor models (rotations, rigid transforms).

Conventions: rotation matrices map vectors of the child frame into the parent frame (R_parent_child),
quaternions are (x, y, z, w) with the scalar last, Euler angles (roll, pitch, yaw) compose as
R = Rz(yaw) @ Ry(pitch) @ Rx(roll) (rotations about the parent's fixed x, y, z axes, roll first).
"""

from __future__ import annotations

import numpy as np


def quat_to_matrix(quat_xyzw: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) -> (3, 3) rotation matrix (normalises the input)."""
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


def rigid(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """(3, 3) rotation and (3,) translation -> (4, 4) homogeneous transform."""
    t = np.eye(4)
    t[:3, :3] = rotation
    t[:3, 3] = np.asarray(translation, dtype=np.float64).reshape(3)
    return t


def invert_rigid(transform: np.ndarray) -> np.ndarray:
    """Inverse of a (4, 4) rigid transform without a general matrix inverse."""
    r = transform[:3, :3]
    return rigid(r.T, -r.T @ transform[:3, 3])
