"""Trajectory: the time series of an agent's pose and velocity that one session follows.

Frames (also in docs/data_format.md):
- world frame = the city mesh's local frame (x east, y north, z up, metres above the vertical datum);
- body frame = x forward, y left, z up;
- `quat_xyzw` rotates body -> world (scalar last, as in the pose JSON `orientation{x,y,z,w}`);
- `lin_vel` is the world-frame linear velocity (m/s), `ang_vel` the world-frame angular velocity (rad/s);
- `ground` is the terrain height under the agent (the z origin of that frame's ego grid).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Trajectory:
    agent_type: str  # "drone" | "rover"
    t: np.ndarray  # (N,) seconds from session start
    position: np.ndarray  # (N, 3) world metres
    quat_xyzw: np.ndarray  # (N, 4) body -> world
    lin_vel: np.ndarray  # (N, 3) world m/s
    ang_vel: np.ndarray  # (N, 3) world rad/s
    ground: np.ndarray  # (N,) terrain height under the agent, world metres
    pattern: str = ""  # e.g. "survey", "orbit", "waypoints", "street"

    def __post_init__(self) -> None:
        n = len(self.t)
        for name, cols in (("position", 3), ("quat_xyzw", 4), ("lin_vel", 3), ("ang_vel", 3)):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != (n, cols):
                raise ValueError(f"Trajectory.{name} must have shape ({n}, {cols}), got {arr.shape}")
            setattr(self, name, arr)
        self.t = np.asarray(self.t, dtype=np.float64)
        self.ground = np.asarray(self.ground, dtype=np.float64).reshape(n)

    def __len__(self) -> int:
        return len(self.t)

    @property
    def yaw(self) -> np.ndarray:
        """(N,) heading of the body x axis in the world x-y plane (rad, counter-clockwise from east)."""
        x, y, z, w = self.quat_xyzw.T
        return np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
