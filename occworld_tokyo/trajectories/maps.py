"""Coarse planning maps derived once per voxel world (kept in the world's `derived` dict).

- `AltitudeMap` (drones): per coarse cell (default 4 m) the lowest and highest allowed flight height,
  from the column-wise terrain (`world.ground`) and surface (`world.top`) reduced over the cell and
  dilated by a horizontal clearance, so that any point of a cell's neighbourhood is covered.
- `StreetGrid` (rovers): per coarse cell (default 1.2 m = 3 voxels) whether all its columns are free
  street space (nothing standing higher than `free_height` above the terrain), whether it is road, and an
  estimated clearance to the nearest occupied column (Euclidean distance transform).

The world is only read through the VoxelWorld interface (x0, y0, voxel_size, objects, object_label,
ground, top, bounds_xy, plan_bounds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy.ndimage import distance_transform_edt, maximum_filter, minimum_filter

from ..labels import ROAD

def cached(world: Any, key: Any, build: Callable[[], Any]) -> Any:
    """build() once per (world, key), stored in `world.derived` so that it lives and dies with the world;
    objects without a `derived` dict get a fresh build every call."""
    store = getattr(world, "derived", None)
    if not isinstance(store, dict):
        return build()
    if key not in store:
        store[key] = build()
    return store[key]


def plan_bounds(world: Any) -> tuple[float, float, float, float]:
    """Where trajectories may go: `world.plan_bounds` when the world has one, else its whole extent."""
    return tuple(getattr(world, "plan_bounds", world.bounds_xy))


def near_mask(structure: np.ndarray, radius_cells: float) -> np.ndarray:
    """(H, W) cells whose centre lies within `radius_cells` cell widths of a True cell of `structure`."""
    if not structure.any():
        return np.zeros_like(structure, dtype=bool)
    return distance_transform_edt(~structure) <= radius_cells


def block_argmax_xy(a: np.ndarray, f: int, x0: float, y0: float, dx: float, dy: float) -> np.ndarray:
    """(H, W, 2) world x, y of the centre of the column holding each f x f block's maximum."""
    nx, ny = a.shape
    px, py = (-nx) % f, (-ny) % f
    if px or py:
        a = np.pad(a, ((0, px), (0, py)), mode="constant", constant_values=-np.inf)
    h, w = a.shape[0] // f, a.shape[1] // f
    k = a.reshape(h, f, w, f).transpose(0, 2, 1, 3).reshape(h, w, f * f).argmax(axis=2)
    i = np.arange(h)[:, None] * f + k // f
    j = np.arange(w)[None, :] * f + k % f
    return np.stack([x0 + (i + 0.5) * dx, y0 + (j + 0.5) * dy], axis=-1)


def block_reduce(a: np.ndarray, f: int, op: Callable) -> np.ndarray:
    """Reduce (nx, ny) by f x f blocks with op (np.max / np.min / np.mean / np.all); edge-padded."""
    nx, ny = a.shape
    px, py = (-nx) % f, (-ny) % f
    if px or py:
        a = np.pad(a, ((0, px), (0, py)), mode="edge")
    return op(a.reshape(a.shape[0] // f, f, a.shape[1] // f, f), axis=(1, 3))


@dataclass(frozen=True)
class CellGrid:
    """A coarse cell lattice aligned with the voxel columns: cell (i, j) starts at x0 + i cell, y0 + j cell."""

    x0: float
    y0: float
    cell: float
    shape: tuple[int, int]

    def index(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World xy (N, 2) -> (i, j, valid)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        i = np.floor((xy[:, 0] - self.x0) / self.cell).astype(np.int64)
        j = np.floor((xy[:, 1] - self.y0) / self.cell).astype(np.int64)
        valid = (i >= 0) & (i < self.shape[0]) & (j >= 0) & (j < self.shape[1])
        return np.clip(i, 0, self.shape[0] - 1), np.clip(j, 0, self.shape[1] - 1), valid

    def centers(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return np.stack([self.x0 + (np.asarray(i) + 0.5) * self.cell, self.y0 + (np.asarray(j) + 0.5) * self.cell], -1)

    def inside_margin(self, bounds: tuple[float, float, float, float], margin: float) -> np.ndarray:
        """(H, W) cells lying entirely within the bounds shrunk by margin."""
        xmin, ymin, xmax, ymax = bounds
        xs = self.x0 + np.arange(self.shape[0]) * self.cell
        ys = self.y0 + np.arange(self.shape[1]) * self.cell
        okx = (xs >= xmin + margin) & (xs + self.cell <= xmax - margin)
        oky = (ys >= ymin + margin) & (ys + self.cell <= ymax - margin)
        return okx[:, None] & oky[None, :]


def _factor(world: Any, cell_m: float) -> int:
    return max(1, int(round(cell_m / float(world.voxel_size[0]))))


@dataclass(frozen=True)
class AltitudeMap:
    grid: CellGrid
    lo: np.ndarray  # (H, W) lowest allowed z (world metres) anywhere in the cell
    hi: np.ndarray  # (H, W) highest allowed z
    ground: np.ndarray  # (H, W) mean terrain height
    relief: np.ndarray  # (H, W) tallest structure above terrain (m), undilated
    relief_xy: np.ndarray  # (H, W, 2) world x, y of that tallest column
    inside: np.ndarray  # (H, W) within the border margin

    def feasible(self, margin_z: float) -> np.ndarray:
        return self.inside & (self.hi - self.lo >= margin_z)

    def sample(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(lo, hi, ground, valid) at world points."""
        i, j, valid = self.grid.index(xy)
        return self.lo[i, j], self.hi[i, j], self.ground[i, j], valid & self.inside[i, j]


def altitude_map(world: Any, cell_m: float, min_agl: float, max_agl: float, clearance: float,
                 horizontal_clearance: float, border_margin: float) -> AltitudeMap:
    """The drone's allowed height band per coarse cell (cached per world and parameters)."""
    key = ("altitude", cell_m, min_agl, max_agl, clearance, horizontal_clearance, border_margin)

    def build() -> AltitudeMap:
        f = _factor(world, cell_m)
        cell = f * float(world.voxel_size[0])
        ground = np.asarray(world.ground, dtype=np.float32)
        top = np.maximum(np.asarray(world.top, dtype=np.float32), ground)
        gmax = block_reduce(ground, f, np.max)
        gmin = block_reduce(ground, f, np.min)
        tmax = block_reduce(top, f, np.max)
        relief = block_reduce(top - ground, f, np.max)
        size = 2 * int(np.ceil(horizontal_clearance / cell)) + 1
        gmax_d = maximum_filter(gmax, size=size, mode="nearest")
        gmin_d = minimum_filter(gmin, size=size, mode="nearest")
        tmax_d = maximum_filter(tmax, size=size, mode="nearest")
        grid = CellGrid(float(world.x0), float(world.y0), cell, gmax.shape)
        lo = np.maximum(gmax_d + min_agl, tmax_d + clearance).astype(np.float64)
        hi = (gmin_d + max_agl).astype(np.float64)
        gmean = block_reduce(ground, f, np.mean).astype(np.float64)
        inside = grid.inside_margin(plan_bounds(world), border_margin)
        relief_xy = block_argmax_xy(top - ground, f, float(world.x0), float(world.y0),
                                    float(world.voxel_size[0]), float(world.voxel_size[1]))
        return AltitudeMap(grid, lo, hi, gmean, relief.astype(np.float64), relief_xy, inside)

    return cached(world, key, build)


def free_columns(world: Any, free_height: float) -> np.ndarray:
    """(nx, ny) bool: nothing stands more than free_height above the terrain in this column."""
    return (np.asarray(world.top, dtype=np.float32) - np.asarray(world.ground, dtype=np.float32)) <= free_height


def surface_labels(world: Any, cols_i: np.ndarray, cols_j: np.ndarray) -> np.ndarray:
    """Label id of the highest occupied voxel of the given columns (0 where nothing is occupied)."""
    dz = float(world.voxel_size[2])
    nz = world.objects.shape[2]
    top = np.asarray(world.top, dtype=np.float64)[cols_i, cols_j]
    k = np.clip(np.round((top - float(world.z0)) / dz).astype(np.int64) - 1, 0, nz - 1)
    obj = world.objects[cols_i, cols_j, k]
    return np.asarray(world.object_label)[obj] * (obj != 0)


@dataclass(frozen=True)
class StreetGrid:
    grid: CellGrid
    free: np.ndarray  # (H, W) every column of the cell is free street space
    road: np.ndarray  # (H, W) the cell's centre column is a road surface
    clearance: np.ndarray  # (H, W) metres to the nearest non-free cell (conservative: minus one cell)
    inside: np.ndarray  # (H, W) within the border margin

    def allowed(self, min_clearance: float) -> np.ndarray:
        return self.free & self.inside & (self.clearance >= min_clearance)


def street_grid(world: Any, cell_m: float, free_height: float, border_margin: float) -> StreetGrid:
    """Rover planning grid (cached per world and parameters)."""
    key = ("street", cell_m, free_height, border_margin)

    def build() -> StreetGrid:
        f = _factor(world, cell_m)
        cell = f * float(world.voxel_size[0])
        free_cols = free_columns(world, free_height)
        free = block_reduce(free_cols, f, np.all)
        grid = CellGrid(float(world.x0), float(world.y0), cell, free.shape)
        nx, ny = free_cols.shape
        ci = np.minimum(np.arange(free.shape[0]) * f + f // 2, nx - 1)
        cj = np.minimum(np.arange(free.shape[1]) * f + f // 2, ny - 1)
        I, J = np.meshgrid(ci, cj, indexing="ij")
        road = (surface_labels(world, I, J) == ROAD) & free
        if free.all():
            dist = np.full(free.shape, np.inf)
        else:
            dist = distance_transform_edt(free) * cell - cell
        inside = grid.inside_margin(plan_bounds(world), border_margin)
        return StreetGrid(grid, free, road, dist, inside)

    return cached(world, key, build)
