"""Copy-last-frame and ego-warp baselines on grids with known motion."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from occworld_tokyo.evaluation.baselines import copy_last_frame, ego_warp, ego_warp_fill, level_shift
from occworld_tokyo.grid import DEFAULT_GRID, EgoFrame, GridSpec

SMALL = GridSpec(x_range=(-4.0, 4.0), y_range=(-4.0, 4.0), z_range=(-2.0, 8.0))  # 20 x 20 x 8


def _random_grid(shape, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.integers(1, 14, shape) * (rng.random(shape) < 0.3)).astype(np.uint8)


def test_copy_last_frame_numpy_and_torch():
    hist = _random_grid((2, 3, 5, 5, 4)).reshape(2, 3, 5, 5, 4)
    fut = copy_last_frame(hist, 4)
    assert fut.shape == (2, 4, 5, 5, 4)
    for t in range(4):
        assert np.array_equal(fut[:, t], hist[:, -1])
    fut[:, 0] = 99  # a real copy
    assert not (hist == 99).any()
    tf = copy_last_frame(torch.from_numpy(hist), 2)
    assert tuple(tf.shape) == (2, 2, 5, 5, 4) and torch.equal(tf[:, 1], torch.from_numpy(hist[:, -1]))
    one = copy_last_frame(hist[0], 6)  # (H, X, Y, Z)
    assert one.shape == (6, 5, 5, 4) and np.array_equal(one[5], hist[0, 2])


def test_ego_warp_identity():
    occ = _random_grid(SMALL.shape)
    f = EgoFrame(12.0, -3.0, 0.4, 2.5)
    out = ego_warp(occ, f, [f, f], SMALL)
    assert out.shape == (2,) + SMALL.shape and np.array_equal(out[0], occ) and np.array_equal(out[1], occ)


def test_ego_warp_whole_voxel_translation_and_level_change():
    occ = _random_grid(SMALL.shape, 3)
    src = EgoFrame(100.0, 50.0, 0.0, 10.0)
    # 5 voxels forward, 2 voxels right (-y), ground 1.25 m higher: world content at src (i, j, k)
    # appears in dst at (i - 5, j + 2, k - 1)
    dst = EgoFrame(102.0, 49.2, 0.0, 11.25)
    assert level_shift(src, dst, SMALL) == 1
    out, valid = ego_warp(occ, src, [dst], SMALL, fill_value=255, return_valid=True)
    out, valid = out[0], valid[0]
    nx, ny, nz = SMALL.shape
    expected = np.full_like(occ, 255)
    expected[: nx - 5, 2:, : nz - 1] = occ[5:, : ny - 2, 1:]
    assert np.array_equal(out, expected)
    assert np.array_equal(valid, expected != 255) and valid.sum() == (nx - 5) * (ny - 2) * (nz - 1)


def test_ego_warp_fill_copies_the_last_frame_into_the_cells_entering_the_view():
    occ = _random_grid(SMALL.shape, 5)
    src, dst = EgoFrame(100.0, 50.0, 0.0, 10.0), EgoFrame(102.0, 49.2, 0.0, 11.25)  # as above: (i-5, j+2, k-1)
    out = ego_warp_fill(occ, src, [dst], SMALL)[0]
    nx, ny, nz = SMALL.shape
    expected = occ.copy()                                   # copy-last where nothing comes from the last grid
    expected[: nx - 5, 2:, : nz - 1] = occ[5:, : ny - 2, 1:]  # ego-warp where it does
    assert out.dtype == occ.dtype and np.array_equal(out, expected)
    as_torch = ego_warp_fill(torch.from_numpy(occ), src, [dst, src], SMALL)
    assert torch.equal(as_torch[0], torch.from_numpy(expected)) and torch.equal(as_torch[1], torch.from_numpy(occ))


def test_ego_warp_rotation_90_degrees():
    occ = _random_grid(DEFAULT_GRID.shape, 4)
    src = EgoFrame(-20.0, 7.0, 0.3, 0.0)
    dst = EgoFrame(-20.0, 7.0, 0.3 + math.pi / 2, 0.0)  # turned left in place
    out = ego_warp(torch.from_numpy(occ), src, [dst])[0].numpy()
    # a point at src ego (x, y) is at dst ego (y, -x): src voxel (i, j) -> dst voxel (j, N-1-i)
    n = DEFAULT_GRID.shape[0]
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    expected = np.empty_like(occ)
    expected[j, n - 1 - i] = occ[i, j]
    assert np.array_equal(out, expected)
    # concretely: something straight ahead of the agent is on its right after turning left
    probe = np.zeros(DEFAULT_GRID.shape, np.uint8)
    probe[150, 100, 5] = 1  # x = +20.2 m ahead, y = +0.2 m
    moved = ego_warp(probe, src, [dst])[0]
    assert tuple(np.argwhere(moved)[0]) == (100, 49, 5)  # x = +0.2 m, y = -20.2 m


def test_ego_warp_outside_is_free_and_non_lattice_ground_raises():
    occ = np.ones(SMALL.shape, np.uint8)
    src = EgoFrame(0.0, 0.0, 0.0, 0.0)
    far = EgoFrame(100.0, 0.0, 0.0, 0.0)
    assert not ego_warp(occ, src, [far], SMALL).any()
    with pytest.raises(ValueError):
        ego_warp(occ, src, [EgoFrame(0.0, 0.0, 0.0, 0.5)], SMALL)
