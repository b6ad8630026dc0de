"""Planning L2 and collision rate on hand-built paths and grids."""

from __future__ import annotations

import math

import numpy as np
import pytest

from occworld_tokyo.evaluation.planning import box_voxels, planning_metrics
from occworld_tokyo.grid import DEFAULT_GRID as G
from occworld_tokyo.labels import BUILDING, DRONE, ROAD, VEHICLE


def xi(x: float) -> int:
    return int(np.floor((x - G.x_range[0]) / G.voxel_size[0]))


def test_l2_at_and_up_to_each_second():
    t = np.arange(1, 7, dtype=float)
    gt = np.stack([2.0 * t, 0.1 * t], axis=-1)
    pred = gt + np.stack([0.3 * t, 0.4 * t], axis=-1)  # error 0.5 m per step -> 0.5, 1.0, ..., 3.0
    r = planning_metrics(pred, gt)
    assert r["l2"] == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    assert (r["l2_1s"], r["l2_2s"], r["l2_3s"]) == pytest.approx((1.0, 2.0, 3.0))
    assert r["l2_avg"] == pytest.approx(2.0)
    assert r["l2_upto_1s"] == pytest.approx(0.75) and r["l2_upto_3s"] == pytest.approx(1.75)
    assert "collision_rate" not in r  # no occupancy given: nothing made up


def test_box_voxels_positive_overlap_only():
    i, j, k = box_voxels(np.array([0.0, 0.0]), 0.4, 0.0, (0.8, 0.8, 0.8), G)
    cols = set(zip(i.tolist(), j.tolist()))
    assert cols == {(99, 99), (99, 100), (100, 99), (100, 100)}  # touching neighbours excluded
    assert set(k.tolist()) == {1, 2}  # z in [0, 0.8]: levels [-0.75, 0.5) and [0.5, 1.75)
    i45, j45, _ = box_voxels(np.array([0.0, 0.0]), 0.4, math.pi / 4, (0.8, 0.8, 0.8), G)
    assert len(set(zip(i45.tolist(), j45.tolist()))) > 4


def test_collision_with_a_building_ahead():
    T = 6
    steps = np.arange(1, T + 1, dtype=float)
    gt = np.stack([2.0 * steps, np.zeros(T)], axis=-1)     # the agent really drove 2 m per step
    pred = np.stack([4.0 * steps, np.zeros(T)], axis=-1)   # the forecast drives 4 m per step
    occ = np.zeros((T,) + G.shape, np.uint8)
    occ[..., 1] = ROAD                                      # the road the box stands on is no obstacle
    for t in range(T):  # a building at current-frame x in [20, 30), seen from future frame t at x - 2 (t + 1)
        shift = 2.0 * (t + 1)
        occ[t, xi(20.0 - shift):xi(30.0 - shift), 90:110, 1:20] = BUILDING
    r = planning_metrics(pred, gt, occ, agent_box=(1.0, 0.8, 0.8), gt_yaw=np.zeros(T))
    # pred at x = 4, 8, 12, 16, 20, 24: the box [x - 0.5, x + 0.5] is inside the building at steps 4 and 5
    assert r["collision"] == [0, 0, 0, 0, 1, 1]
    assert r["collision_1s"] == 0 and r["collision_2s"] == 0 and r["collision_3s"] == 1
    assert r["collision_rate"] == pytest.approx(2 / 6)
    assert r["gt_collision_rate"] == 0


def _single_step_case(obstacle_xy: tuple[float, float], level: int, cls: int) -> dict:
    occ = np.zeros((1, 1) + G.shape, np.uint8)
    i = xi(obstacle_xy[0])
    j = int(np.floor((obstacle_xy[1] - G.y_range[0]) / G.voxel_size[1]))
    occ[0, 0, i - 1:i + 2, j - 1:j + 2, level] = cls
    return planning_metrics(np.array([[[5.0, 0.0]]]), np.array([[[0.0, 0.0]]]), occ, agent_box=(1.0, 0.8, 0.8),
                            gt_yaw=np.array([[math.pi / 2]]), gt_ground_dz=np.array([[2.5]]),
                            agent_z=np.array([10.0]))


def test_collision_frame_conversion_rotation_and_ground_change():
    # the future frame turned 90 deg left in place and its ground is 2.5 m higher: the predicted drone box 5 m
    # ahead and 10 m up in the current frame is 5 m to the right (y = -5) and 7.5 m up in the future grid,
    # i.e. level 7 ([6.75, 8.0)); 10 m would be level 9
    assert _single_step_case((0.0, -5.0), 7, VEHICLE)["collision_rate"] == 1.0
    assert _single_step_case((5.0, 0.0), 7, VEHICLE)["collision_rate"] == 0.0   # where it was, not where it is
    assert _single_step_case((0.0, -5.0), 9, DRONE)["collision_rate"] == 0.0    # ground change ignored
    assert _single_step_case((0.0, -5.0), 7, ROAD)["collision_rate"] == 0.0     # not an obstacle class
