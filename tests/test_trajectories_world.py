"""Planners on real voxel worlds: the built-in sample district and the western-Tokyo PLATEAU tile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from occworld_tokyo.labels import BUILDING, ROAD
from occworld_tokyo.trajectories import DroneSpec, RoverSpec, plan_drone_motion, plan_rover_motion
from occworld_tokyo.rotations import angular_velocity_from_quats

TILE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "plateau" / "53395404_bldg_6697_op.gml"


@pytest.fixture(scope="module")
def sample_world():
    from occworld_tokyo.citymodel.sample_city import load_sample_city
    from occworld_tokyo.world import build_voxel_world

    return build_voxel_world(load_sample_city(seed=0))


@pytest.fixture(scope="module")
def tile_world():
    if not TILE.exists():
        pytest.skip(f"real PLATEAU data not present ({TILE}); ../shared is absent")
    from occworld_tokyo.citymodel import load_city
    from occworld_tokyo.world import build_voxel_world

    return build_voxel_world(load_city(str(TILE)))


@pytest.fixture(params=["sample", "tile"])
def world(request, sample_world):
    return sample_world if request.param == "sample" else request.getfixturevalue("tile_world")


def _building_in_column(world, p):
    i = np.floor((p[:, 0] - world.x0) / world.voxel_size[0]).astype(int)
    j = np.floor((p[:, 1] - world.y0) / world.voxel_size[1]).astype(int)
    return (world.object_label[world.objects[i, j]] == BUILDING).any(axis=1), i, j


@pytest.mark.parametrize("pattern", ["survey", "orbit", "waypoints"])
def test_drone_on_real_world(world, pattern):
    m = plan_drone_motion(world, 200, 2.0, np.random.default_rng(0), pattern)
    assert m.pattern == pattern
    t = np.arange(0.0, m.curve.duration + 1e-9, 0.01)
    p, v, _, _ = m.curve.derivatives(t)
    agl = p[:, 2] - world.ground_height(p[:, 0], p[:, 1])
    assert agl.min() >= 30.0 and agl.max() <= 120.0
    assert (p[:, 2] - world.surface_height(p[:, 0], p[:, 1])).min() >= DroneSpec().clearance
    assert not world.is_occupied(p).any()
    speed = np.linalg.norm(v, axis=1)
    assert speed.min() >= 5.0 and speed.max() <= 15.0
    tr = m.trajectory
    assert np.allclose(tr.ground, world.ground_height(tr.position[:, 0], tr.position[:, 1]))


def test_drone_orbits_a_tall_sample_building(sample_world):
    m = plan_drone_motion(sample_world, 60, 2.0, np.random.default_rng(4), "orbit",
                          DroneSpec(orbit_yaw="center"))
    cx, cy = m.curve.look_at
    rel = sample_world.surface_height(np.array([cx]), np.array([cy])) - sample_world.ground_height(
        np.array([cx]), np.array([cy]))
    assert rel[0] >= DroneSpec().orbit_min_relief


@pytest.mark.parametrize("seed", [0, 1])
def test_rover_on_real_world(world, seed):
    m = plan_rover_motion(world, 200, 2.0, np.random.default_rng(seed))
    t = np.arange(0.0, m.curve.duration + 1e-9, 0.02)
    p, v, _, _ = m.curve.derivatives(t)
    in_building, i, j = _building_in_column(world, p)
    assert not in_building.any()
    rel = p[:, 2] - world.ground_height(p[:, 0], p[:, 1])
    assert rel.min() >= 0.5 and rel.max() <= 1.5
    assert (world.top[i, j] - world.ground[i, j]).max() <= RoverSpec().free_height
    speed = np.linalg.norm(v, axis=1)
    assert speed.min() >= 1.0 and speed.max() <= 5.0
    h = 1e-3
    w_fd = angular_velocity_from_quats(m.curve.quat(t[::50] - h), m.curve.quat(t[::50] + h),
                                       np.full(len(t[::50]), 2 * h))
    assert np.allclose(m.curve.angular_velocity(t[::50]), w_fd, atol=1e-4)


def test_sample_rover_prefers_roads(sample_world):
    w = sample_world
    m = plan_rover_motion(w, 200, 2.0, np.random.default_rng(3))
    p = m.curve.position(np.arange(0.0, m.curve.duration, 0.1))
    i = np.floor((p[:, 0] - w.x0) / w.voxel_size[0]).astype(int)
    j = np.floor((p[:, 1] - w.y0) / w.voxel_size[1]).astype(int)
    on_road = (w.object_label[w.objects[i, j]] == ROAD).any(axis=1)
    assert on_road.mean() > 0.8
