"""Finite differences of trajectories (velocities from positions, angular velocities from quaternions) for the
drone and rover planners and their tests. Rotations and quaternions live in `occworld_tokyo.rotations` (one
home; its conventions apply): the names below that come from there are imported, not defined, here.

Nothing here knows about worlds or planners: these are small numpy functions on arrays (t in s, positions in m).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from occworld_tokyo.rotations import angular_velocity_from_quats
from occworld_tokyo.rotations import wrap_angle  # noqa: F401 - importable here too for code written before the move

__all__ = ["central_difference", "frame_velocity_differences", "frame_angular_velocity_differences"]


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
