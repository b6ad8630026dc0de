"""Painting agent boxes into a frame's ego grid.

Rule (shared by `paint_agents`, `box_voxel_count` and the annotations): a voxel belongs to an agent's box
when its centre's (x, y) lies in the box footprint (the oriented rectangle, edges included) and its
z interval [z_k, z_k + dz) overlaps the box's height interval with positive length. In x and y this is
the centre rule; in z it is the overlap rule, because the grid's 1.25 m levels are thicker than a drone
(0.3 m) and the centre rule would let thin agents vanish from the occupancy. For a box whose faces lie on
voxel boundaries both rules agree and the voxel count is volume / voxel volume (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..grid import EgoFrame, GridSpec
from .states import AgentStates

_EPS = 1e-9


@dataclass(frozen=True)
class BoxVoxels:
    """The voxels of one box in a grid: an index block and the footprint mask over its columns."""

    i0: int
    j0: int
    k0: int
    k1: int  # exclusive
    mask: np.ndarray  # (ni, nj) bool: columns whose centre is in the footprint

    @property
    def count(self) -> int:
        return int(self.mask.sum()) * max(self.k1 - self.k0, 0)


def box_voxels(center: np.ndarray, size: np.ndarray, yaw: float, grid: GridSpec) -> BoxVoxels | None:
    """Voxels of a box given in the ego frame (centre x, y, z with z above ground_z; yaw in the ego frame)."""
    lo = grid.lower
    vs = np.asarray(grid.voxel_size, dtype=np.float64)
    shape = grid.shape
    cx, cy, cz = (float(v) for v in center)
    hl, hw, hh = float(size[0]) / 2, float(size[1]) / 2, float(size[2]) / 2
    c, s = np.cos(yaw), np.sin(yaw)
    ax = abs(c) * hl + abs(s) * hw
    ay = abs(s) * hl + abs(c) * hw
    i0 = max(int(np.ceil((cx - ax - lo[0]) / vs[0] - 0.5 - _EPS)), 0)
    i1 = min(int(np.floor((cx + ax - lo[0]) / vs[0] - 0.5 + _EPS)) + 1, shape[0])
    j0 = max(int(np.ceil((cy - ay - lo[1]) / vs[1] - 0.5 - _EPS)), 0)
    j1 = min(int(np.floor((cy + ay - lo[1]) / vs[1] - 0.5 + _EPS)) + 1, shape[1])
    k0 = max(int(np.floor((cz - hh - lo[2]) / vs[2] + _EPS)), 0)
    k1 = min(int(np.ceil((cz + hh - lo[2]) / vs[2] - _EPS)), shape[2])
    if i1 <= i0 or j1 <= j0 or k1 <= k0:
        return None
    x = lo[0] + (np.arange(i0, i1) + 0.5) * vs[0] - cx
    y = lo[1] + (np.arange(j0, j1) + 0.5) * vs[1] - cy
    lx = c * x[:, None] + s * y[None, :]
    ly = -s * x[:, None] + c * y[None, :]
    mask = (np.abs(lx) <= hl + _EPS) & (np.abs(ly) <= hw + _EPS)
    if not mask.any():
        return None
    return BoxVoxels(i0, j0, k0, k1, mask)


def to_ego(states: AgentStates, frame: EgoFrame) -> tuple[np.ndarray, np.ndarray]:
    """(centres (K, 3) in the ego frame, yaws (K,) in the ego frame wrapped to [-pi, pi))."""
    centers = frame.world_to_ego(states.centers).reshape(-1, 3)
    yaws = (states.yaws - frame.yaw + np.pi) % (2 * np.pi) - np.pi
    return centers, yaws


def near_grid(centers_ego: np.ndarray, sizes: np.ndarray, grid: GridSpec) -> np.ndarray:
    """(K,) bool: the box's bounding circle/slab can reach the grid (cheap pre-filter)."""
    r = 0.5 * np.linalg.norm(sizes, axis=1)
    lo, hi = grid.lower, np.array([grid.x_range[1], grid.y_range[1], grid.z_range[1]])
    return np.all((centers_ego + r[:, None] >= lo) & (centers_ego - r[:, None] <= hi), axis=1)


def paint_agents(labels: np.ndarray, instances: np.ndarray, frame: EgoFrame, states: AgentStates,
                 grid: GridSpec) -> None:
    """Write every agent's label and instance id into the voxels of its box (in place; agents win over
    the city where both claim a voxel). labels/instances: (X, Y, Z) arrays of the frame's grid."""
    if len(states) == 0:
        return
    centers, yaws = to_ego(states, frame)
    for a in np.nonzero(near_grid(centers, states.sizes, grid))[0]:
        bv = box_voxels(centers[a], states.sizes[a], float(yaws[a]), grid)
        if bv is None:
            continue
        ni, nj = bv.mask.shape
        sl = (slice(bv.i0, bv.i0 + ni), slice(bv.j0, bv.j0 + nj), slice(bv.k0, bv.k1))
        labels[sl][bv.mask] = states.labels[a]
        instances[sl][bv.mask] = states.ids[a]


def box_voxel_count(center: np.ndarray, size: np.ndarray, yaw: float, grid: GridSpec) -> int:
    bv = box_voxels(center, size, yaw, grid)
    return 0 if bv is None else bv.count
