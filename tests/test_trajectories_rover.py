"""Rover planner on a hand-made voxel world: streets only, terrain following, consistent velocities."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest_trajectories import make_fake_city  # noqa: E402

from occworld_tokyo.labels import BUILDING, ROAD  # noqa: E402
from occworld_tokyo.trajectories import (  # noqa: E402
    NoStreetSpaceError,
    PlanningError,
    RoverSpec,
    plan_rover,
    plan_rover_motion,
)
from occworld_tokyo.trajectories.kinematics import frame_angular_velocity_differences, frame_velocity_differences  # noqa: E402
from occworld_tokyo.rotations import angular_velocity_from_quats, euler_from_quat  # noqa: E402

N_FRAMES = 160


@pytest.fixture(scope="module")
def world():
    return make_fake_city()


@pytest.fixture(scope="module")
def building_columns(world):
    """(nx, ny) True where any voxel of the column belongs to a building (independent of the planner)."""
    return (world.object_label[world.objects] == BUILDING).any(axis=2)


@pytest.fixture(scope="module")
def drives(world):
    return {seed: plan_rover_motion(world, N_FRAMES, 2.0, np.random.default_rng(seed)) for seed in (0, 1, 2)}


def _columns(world, p):
    i = np.floor((p[:, 0] - world.x0) / world.voxel_size[0]).astype(int)
    j = np.floor((p[:, 1] - world.y0) / world.voxel_size[1]).astype(int)
    return i, j


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rover_never_enters_building_columns(world, drives, building_columns, seed):
    m = drives[seed]
    t = np.arange(0.0, m.curve.duration + 1e-9, 0.01)  # <= 5 cm of travel between checks
    p = m.curve.position(t)
    i, j = _columns(world, p)
    assert not building_columns[i, j].any()
    # and nothing stands above street level where it drives
    assert (world.surface_height(p[:, 0], p[:, 1]) - world.ground_height(p[:, 0], p[:, 1])).max() <= 1.6
    # in this world every street is road: the route keeps to road surfaces
    labels = world.object_label[world.objects[i, j]]
    assert np.mean((labels == ROAD).any(axis=1)) > 0.95


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rover_height_follows_terrain(world, drives, seed):
    m = drives[seed]
    tr = m.trajectory
    rel = tr.position[:, 2] - tr.ground
    assert rel.min() >= 0.5 and rel.max() <= 1.5
    assert np.allclose(tr.ground, world.ground_height(tr.position[:, 0], tr.position[:, 1]))
    # the terrain varies by metres along the drive; the sensor height stays within +-0.1 m of its nominal
    assert np.ptp(tr.ground) > 1.0
    assert np.ptp(rel) < 0.2
    t = np.arange(0.0, m.curve.duration + 1e-9, 0.02)
    p = m.curve.position(t)
    dense_rel = p[:, 2] - world.ground_height(p[:, 0], p[:, 1])
    assert dense_rel.min() >= 0.5 and dense_rel.max() <= 1.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rover_speed_band_and_heading_along_tangent(drives, seed):
    m = drives[seed]
    t = np.arange(0.0, m.curve.duration + 1e-9, 0.02)
    _, v, a, _ = m.curve.derivatives(t)
    speed = np.linalg.norm(v, axis=1)
    assert speed.min() >= 1.0 and speed.max() <= 5.0
    assert np.linalg.norm(a, axis=1).max() <= 2.0
    yaw, pitch, roll = euler_from_quat(m.curve.quat(t))
    assert np.allclose(np.angle(np.exp(1j * (yaw - np.arctan2(v[:, 1], v[:, 0])))), 0.0, atol=1e-9)
    assert np.allclose(pitch, -np.arctan2(v[:, 2], np.hypot(v[:, 0], v[:, 1])), atol=1e-9)  # nose up uphill
    assert np.allclose(roll, 0.0, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_rover_velocities_match_finite_differences(drives, seed):
    m = drives[seed]
    h = 1e-3
    t = np.linspace(0.0, m.curve.duration, 400)
    v_fd = (m.curve.position(t + h) - m.curve.position(t - h)) / (2 * h)
    assert np.allclose(m.curve.velocity(t), v_fd, atol=1e-4)
    w_fd = angular_velocity_from_quats(m.curve.quat(t - h), m.curve.quat(t + h), np.full(len(t), 2 * h))
    assert np.allclose(m.curve.angular_velocity(t), w_fd, atol=1e-4)
    tr = m.trajectory
    assert np.abs(frame_velocity_differences(tr.t, tr.position) - tr.lin_vel[1:-1]).max() < 0.1
    assert np.abs(frame_angular_velocity_differences(tr.t, tr.quat_xyzw) - tr.ang_vel[1:-1]).max() < 0.05
    assert np.allclose(tr.t, np.arange(N_FRAMES) / 2.0)


def test_rover_determinism(world):
    a = plan_rover(world, 50, 2.0, np.random.default_rng(5))
    b = plan_rover(world, 50, 2.0, np.random.default_rng(5))
    c = plan_rover(world, 50, 2.0, np.random.default_rng(6))
    for name in ("t", "position", "quat_xyzw", "lin_vel", "ang_vel", "ground"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert a.agent_type == "rover" and a.pattern == "street"
    assert not np.allclose(a.position, c.position)


def test_rover_long_drive_uses_several_legs(world, building_columns):
    m = plan_rover_motion(world, 800, 2.0, np.random.default_rng(2))  # ~1 km in a 480 m street grid
    t = np.arange(0.0, m.curve.duration + 1e-9, 0.02)
    p = m.curve.position(t)
    i, j = _columns(world, p)
    assert not building_columns[i, j].any()
    assert np.linalg.norm(m.curve.velocity(t), axis=1).min() >= 1.0


def test_rover_plans_200_frames(world):
    traj = plan_rover(world, 200, 2.0, np.random.default_rng(9))  # speed: benchmarks, not a wall-clock assert
    assert len(traj) == 200 and traj.agent_type == "rover"


def test_rover_errors():
    solid = make_fake_city(size=200.0, all_built=True)
    with pytest.raises(NoStreetSpaceError, match="no free street space"):
        plan_rover(solid, 20, 2.0, np.random.default_rng(0))
    small = make_fake_city(size=160.0)
    with pytest.raises(PlanningError, match="fewer frames"):
        plan_rover(small, 20000, 2.0, np.random.default_rng(0), spec=RoverSpec(attempts=2))
    with pytest.raises(ValueError, match="pattern"):
        plan_rover(small, 5, 2.0, np.random.default_rng(0), "orbit")
    with pytest.raises(TypeError, match="rng"):
        plan_rover(small, 5, 2.0, None)
