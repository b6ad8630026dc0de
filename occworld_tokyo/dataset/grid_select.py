"""Which part of the stored 200 x 200 x 121 grid a config trains on, and at what resolution.

The config's `point_cloud_range` and `voxel_size` (the guide's keys) pick a box of the stored grid and a
coarser voxel that must be a whole multiple of the stored one. The guide's own values select the full grid
unchanged; a small CPU config such as `point_cloud_range=[-20,-20,-2,20,20,38], voxel_size=[0.8,0.8,2.5]`
selects the central 100 x 100 x 32 voxels and pools them 2 x 2 x 2 into 50 x 50 x 16.

Pooling rule (documented in docs/training.md): a coarse voxel takes the HIGHEST storage id in its block.
Ids are ordered so that thin and dynamic things win (dynamic agents 11-13 > sidewalk > ... > building > free):
no occupied voxel disappears when the grid gets coarser. Visibility masks pool with "any", instance ids with max.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from occworld_tokyo.config import ConfigError
from occworld_tokyo.grid import DEFAULT_GRID, GridSpec

_TOL = 1e-6


@dataclass(frozen=True)
class GridSelection:
    """Index box [lo, hi) per axis of the stored grid and an integer pooling factor per axis."""

    lo: tuple[int, int, int]
    hi: tuple[int, int, int]
    factor: tuple[int, int, int]
    grid: GridSpec  # the selected, pooled grid in the same ego frame

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple((h - l) // f for l, h, f in zip(self.lo, self.hi, self.factor))

    @property
    def is_identity(self) -> bool:
        return self.lo == (0, 0, 0) and self.hi == DEFAULT_GRID.shape and self.factor == (1, 1, 1)

    def apply(self, volume: np.ndarray, reduce: str = "max") -> np.ndarray:
        """Crop and pool one (X, Y, Z) stored volume; `reduce` is 'max' (labels, ids) or 'any' (masks)."""
        v = volume[self.lo[0]:self.hi[0], self.lo[1]:self.hi[1], self.lo[2]:self.hi[2]]
        if self.factor == (1, 1, 1):
            return np.ascontiguousarray(v)
        (fx, fy, fz), (nx, ny, nz) = self.factor, self.shape
        blocks = v.reshape(nx, fx, ny, fy, nz, fz)
        out = blocks.max(axis=(1, 3, 5)) if reduce == "max" else blocks.any(axis=(1, 3, 5))
        return np.ascontiguousarray(out)


def select_grid(point_cloud_range, voxel_size, stored: GridSpec = DEFAULT_GRID) -> GridSelection:
    """The selection for a config's range and voxel size; a clear ConfigError when they do not fit the data."""
    pcr = [float(v) for v in point_cloud_range]
    vox = [float(v) for v in voxel_size]
    if len(pcr) != 6 or len(vox) != 3:
        raise ConfigError(f"point_cloud_range needs 6 numbers and voxel_size 3 (got {pcr}, {vox})")
    lo, hi, factor = [], [], []
    for axis in range(3):
        s = stored.voxel_size[axis]
        f = vox[axis] / s
        if abs(f - round(f)) > _TOL or round(f) < 1:
            raise ConfigError(f"voxel_size[{axis}] = {vox[axis]} must be a whole multiple of the data's {s} m voxel")
        f = int(round(f))
        start = (pcr[axis] - stored.lower[axis]) / s
        if abs(start - round(start)) > _TOL or round(start) < 0:
            raise ConfigError(f"point_cloud_range[{axis}] = {pcr[axis]} must lie on the data's voxel lattice "
                              f"({stored.lower[axis]} + k * {s}) inside the stored grid")
        start = int(round(start))
        n_coarse = int(np.floor((pcr[axis + 3] - pcr[axis]) / vox[axis] + _TOL))
        stop = start + n_coarse * f
        if stop > stored.shape[axis]:  # the guide's z range 150 m overshoots 121 x 1.25 m by 0.75 m: clip
            n_coarse = (stored.shape[axis] - start) // f
            stop = start + n_coarse * f
        if n_coarse < 1:
            raise ConfigError(f"point_cloud_range axis {axis} selects no voxel of the stored grid")
        lo.append(start), hi.append(stop), factor.append(f)
    lower = [float(stored.lower[a]) + lo[a] * stored.voxel_size[a] for a in range(3)]
    upper = [float(stored.lower[a]) + hi[a] * stored.voxel_size[a] for a in range(3)]
    grid = GridSpec(x_range=(lower[0], upper[0]), y_range=(lower[1], upper[1]), z_range=(lower[2], upper[2]),
                    voxel_size=tuple(float(v) for v in vox))
    return GridSelection(tuple(lo), tuple(hi), tuple(factor), grid)
