"""Forecast baselines the world model must beat (issue 4, "Metrics"; docs/metrics.md).

1. `copy_last_frame`: every future frame is the last observed frame (the scene "freezes" in the ego grid).
2. `ego_warp`: the last observed frame is treated as a static world and re-sampled into each future frame's
   ego grid with the ground-truth future ego motion (yaw rotation, x/y translation, and the change of
   `ground_z`, which is a whole number of 1.25 m levels). Moving objects stay where they were last seen.

3. `ego_warp_fill`: `ego_warp` where the last grid reaches, and elsewhere (the cells entering the view) the last
   frame's own voxel at the same place of the ego grid, as `copy_last` (a street continues ahead of whoever moves
   along it). The strongest of the three hand-made forecasts over the voxels the camera sees ahead.

Re-sampling is nearest neighbour by voxel centre: the centre of each target voxel is mapped into the last
frame's grid and takes the label of the voxel it falls into. Yaw-only frames make the mapping the same for
every z level, so it is computed once per (x, y) column and whole columns are gathered with a level shift.
Target voxels whose centre falls outside the last grid get `fill_value` (default 0 = free; pass e.g. 255 to
mark them "unknown" and mask them out with OccupancyMetrics' ignore_index or the returned validity mask).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..grid import DEFAULT_GRID, EgoFrame, GridSpec

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]


def copy_last_frame(occ_hist: Any, n_future: int) -> Any:
    """Baseline 1: (..., H, X, Y, Z) history -> (..., n_future, X, Y, Z) copies of the last frame.

    Works on numpy arrays and torch tensors (returns the same type, a real copy, not a view).
    """
    if n_future < 1:
        raise ValueError("n_future must be >= 1")
    if occ_hist.ndim < 4:
        raise ValueError(f"expected (..., H, X, Y, Z), got shape {tuple(occ_hist.shape)}")
    last = occ_hist[..., -1:, :, :, :]
    if torch is not None and isinstance(occ_hist, torch.Tensor):
        reps = [1] * (occ_hist.ndim - 4) + [n_future, 1, 1, 1]
        return last.repeat(*reps)
    return np.repeat(np.asarray(last), n_future, axis=-4)


def _column_map(grid: GridSpec, src: EgoFrame, dst: EgoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every (x, y) column of `dst`'s grid: source column indices (ix, iy) in `src`'s grid and validity."""
    nx, ny, _ = grid.shape
    cx, cy = grid.centers(0), grid.centers(1)
    ex, ey = np.meshgrid(cx, cy, indexing="ij")
    pts = np.stack([ex, ey, np.zeros_like(ex)], axis=-1).reshape(-1, 3)
    world = dst.ego_to_world(pts)
    in_src = src.world_to_ego(world)
    ix = np.floor((in_src[:, 0] - grid.x_range[0]) / grid.voxel_size[0]).astype(np.int64)
    iy = np.floor((in_src[:, 1] - grid.y_range[0]) / grid.voxel_size[1]).astype(np.int64)
    valid = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    return ix.reshape(nx, ny), iy.reshape(nx, ny), valid.reshape(nx, ny)


def level_shift(src: EgoFrame, dst: EgoFrame, grid: GridSpec = DEFAULT_GRID) -> int:
    """Whole z levels between the two frames' grids: dst level k shows src level k + shift.

    Raises if the ground heights differ by a non-integer number of levels (they are snapped to the lattice).
    """
    dz = (dst.ground_z - src.ground_z) / grid.voxel_size[2]
    shift = int(round(dz))
    if abs(dz - shift) > 1e-3:
        raise ValueError(f"ground_z changes by {dz:.4f} levels, not a whole number of {grid.voxel_size[2]} m levels")
    return shift


def warp_frame(occ: np.ndarray, src: EgoFrame, dst: EgoFrame, grid: GridSpec = DEFAULT_GRID,
               fill_value: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Re-sample one (X, Y, Z) grid observed in `src` into `dst`'s ego grid; returns (grid, valid mask)."""
    if tuple(occ.shape) != grid.shape:
        raise ValueError(f"grid shape {tuple(occ.shape)} != GridSpec shape {grid.shape}")
    nx, ny, nz = grid.shape
    ix, iy, col_valid = _column_map(grid, src, dst)
    shift = level_shift(src, dst, grid)
    cols = occ.reshape(nx * ny, nz)
    src_col = np.where(col_valid, ix * ny + iy, 0).reshape(-1)
    gathered = np.take(cols, src_col, axis=0)  # whole z columns, (X*Y, Z)
    gathered[~col_valid.reshape(-1)] = fill_value
    out = np.full((nx * ny, nz), fill_value, dtype=occ.dtype)
    # dst level k shows src level k + shift
    lo, hi = max(0, -shift), min(nz, nz - shift)
    if lo < hi:
        out[:, lo:hi] = gathered[:, lo + shift:hi + shift]
    k = np.arange(nz)
    lvl_valid = (k + shift >= 0) & (k + shift < nz)
    valid = col_valid[:, :, None] & lvl_valid[None, None, :]
    return out.reshape(nx, ny, nz), valid


def ego_warp(last_occ: Any, last_frame: EgoFrame, future_frames: Sequence[EgoFrame],
             grid: GridSpec = DEFAULT_GRID, fill_value: int = 0, return_valid: bool = False) -> Any:
    """Baseline 2: warp the last observed grid (X, Y, Z) into each future frame -> (T, X, Y, Z).

    `last_frame` and `future_frames` must be expressed in one common world frame (any: the session's world
    frame, or the current ego frame as "world"). With `return_valid=True` also returns the (T, X, Y, Z) bool
    mask of voxels that came from inside the last grid. Accepts numpy or torch (CPU) and returns the same type.
    """
    is_torch = torch is not None and isinstance(last_occ, torch.Tensor)
    occ = last_occ.detach().cpu().numpy() if is_torch else np.asarray(last_occ)
    outs, valids = [], []
    for frame in future_frames:
        o, v = warp_frame(occ, last_frame, frame, grid, fill_value)
        outs.append(o)
        valids.append(v)
    future = np.stack(outs) if outs else np.zeros((0,) + occ.shape, dtype=occ.dtype)
    valid = np.stack(valids) if valids else np.zeros((0,) + occ.shape, dtype=bool)
    if is_torch:
        future = torch.from_numpy(future).to(last_occ.device)
        valid = torch.from_numpy(valid).to(last_occ.device)
    return (future, valid) if return_valid else future


def fill_outside(warped: Any, valid: Any, last_occ: Any) -> Any:
    """`ego_warp`'s (T, X, Y, Z) grids and validity mask (return_valid=True) -> the same grids with every voxel
    that came from outside the last grid filled with last_occ's own voxel at that place (`copy_last`)."""
    if torch is not None and isinstance(warped, torch.Tensor):
        return torch.where(valid, warped, last_occ.to(warped.device)[None].to(warped.dtype))
    return np.where(valid, warped, np.asarray(last_occ)[None]).astype(warped.dtype)


def ego_warp_fill(last_occ: Any, last_frame: EgoFrame, future_frames: Sequence[EgoFrame],
                  grid: GridSpec = DEFAULT_GRID) -> Any:
    """Baseline 3: `ego_warp` of the last grid (X, Y, Z), its voxels that come from outside the last grid filled
    with the last grid's own voxel at the same place (`fill_outside`) -> (T, X, Y, Z). numpy or torch (CPU) in,
    the same type out."""
    warped, valid = ego_warp(last_occ, last_frame, future_frames, grid, return_valid=True)
    return fill_outside(warped, valid, last_occ)
