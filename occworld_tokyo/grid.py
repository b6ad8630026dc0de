"""The ego-centric occupancy grid of every frame (the guide's "Occupancy Grid Dimensions").

Convention (also in docs/data_format.md):
- index order [X, Y, Z]; X forward, Y left, Z up (right-handed), rotated with the agent's yaw only
  (gravity aligned: roll and pitch never tilt the grid);
- x, y in [-40, 40) m around the agent, 0.4 m voxels -> 200 x 200;
- z in [-2, 149.25) m relative to the *ground under the agent* (not the agent, not sea level),
  1.25 m voxels -> 121 levels; voxel k covers [-2 + 1.25 k, -2 + 1.25 (k + 1)).

`OCC3D_GRID` (`generate --grid occ3d`) is the Occ3D-nuScenes slab that released OccWorld checkpoints read:
200 x 200 x 16, 0.4 m voxels, z in [-1.0, 5.4) m; its ground level is 2 (the terrain voxel is [-0.2, 0.2) m,
so z = 0 is the ground, as in nuScenes' ego frame). Its data is voxelized from the geometry at 0.4 m levels,
never resampled from the 1.25 m ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GridSpec:
    x_range: tuple[float, float] = (-40.0, 40.0)
    y_range: tuple[float, float] = (-40.0, 40.0)
    z_range: tuple[float, float] = (-2.0, 149.25)
    voxel_size: tuple[float, float, float] = (0.4, 0.4, 1.25)
    ground_level: int = 1  # grid level that holds the terrain voxel under the agent (VoxelWorld.snap_ground_z)

    @property
    def shape(self) -> tuple[int, int, int]:
        lo = np.array([self.x_range[0], self.y_range[0], self.z_range[0]])
        hi = np.array([self.x_range[1], self.y_range[1], self.z_range[1]])
        return tuple(int(n) for n in np.round((hi - lo) / np.array(self.voxel_size)))

    @property
    def lower(self) -> np.ndarray:
        return np.array([self.x_range[0], self.y_range[0], self.z_range[0]], dtype=np.float64)

    @property
    def point_cloud_range(self) -> list[float]:
        """OccWorld/mmdet3d style [x0, y0, z0, x1, y1, z1]."""
        return [self.x_range[0], self.y_range[0], self.z_range[0], self.x_range[1], self.y_range[1], self.z_range[1]]

    def centers(self, axis: int) -> np.ndarray:
        """Voxel centre coordinates along one axis (ego frame, z relative to ground)."""
        n = self.shape[axis]
        return self.lower[axis] + (np.arange(n) + 0.5) * self.voxel_size[axis]

    def to_index(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ego-frame points (N, 3), z relative to ground -> (indices (N, 3) int64, inside mask (N,))."""
        idx = np.floor((np.asarray(points, dtype=np.float64) - self.lower) / np.array(self.voxel_size)).astype(np.int64)
        inside = np.all((idx >= 0) & (idx < np.array(self.shape)), axis=1)
        return idx, inside

    def to_dict(self) -> dict:
        return {
            "x_range": list(self.x_range),
            "y_range": list(self.y_range),
            "z_range": list(self.z_range),
            "voxel_size": list(self.voxel_size),
            "shape": list(self.shape),
            "ground_level": self.ground_level,
            "index_order": "XYZ",
            "axes": "X forward, Y left, Z up; yaw-only rotation; z relative to the ground under the agent",
        }


    @classmethod
    def from_dict(cls, d: dict) -> "GridSpec":
        """The grid a session's meta.json `grid` records (`to_dict`); sessions before `ground_level` existed: 1."""
        return cls(x_range=tuple(d["x_range"]), y_range=tuple(d["y_range"]), z_range=tuple(d["z_range"]),
                   voxel_size=tuple(d["voxel_size"]), ground_level=int(d.get("ground_level", 1)))


DEFAULT_GRID = GridSpec()
assert DEFAULT_GRID.shape == (200, 200, 121)
OCC3D_GRID = GridSpec(z_range=(-1.0, 5.4), voxel_size=(0.4, 0.4, 0.4), ground_level=2)
assert OCC3D_GRID.shape == (200, 200, 16)
GRID_NAMES = ("default", "occ3d")


def grid_named(name: str) -> GridSpec:
    """`--grid default|occ3d` -> its GridSpec."""
    if name == "default":
        return DEFAULT_GRID
    if name == "occ3d":
        return OCC3D_GRID
    raise ValueError(f"--grid must be one of {GRID_NAMES} (got {name!r})")


def grid_name(grid: GridSpec) -> str | None:
    """'default' / 'occ3d' for those grids, None for any other (e.g. a training selection)."""
    for name in GRID_NAMES:
        if grid_named(name) == grid:
            return name
    return None


@dataclass(frozen=True)
class EgoFrame:
    """The yaw-only frame of one frame's grid: origin at the agent's x, y and at `ground_z` in height.

    `ground_z` is the world height of the grid's z = 0 plane (the terrain under the agent, snapped to the
    voxel world's 1.25 m level lattice so that grid levels line up with world levels). Lidar points and
    everything else "in the ego frame" use this frame, so `GridSpec.to_index` applies to them directly.
    """

    x: float
    y: float
    yaw: float
    ground_z: float

    def world_to_ego(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        dx, dy = p[..., 0] - self.x, p[..., 1] - self.y
        return np.stack([c * dx + s * dy, -s * dx + c * dy, p[..., 2] - self.ground_z], axis=-1)

    def ego_to_world(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        ex, ey = p[..., 0], p[..., 1]
        return np.stack([self.x + c * ex - s * ey, self.y + s * ex + c * ey, p[..., 2] + self.ground_z], axis=-1)

    def rotate_to_ego(self, vectors: np.ndarray) -> np.ndarray:
        """World-frame direction vectors (..., 3) -> ego frame (no translation)."""
        from occworld_tokyo.rotations import rotate_yaw

        return rotate_yaw(vectors, -self.yaw)
