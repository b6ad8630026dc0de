"""Drone planner on a hand-made voxel world: bands checked densely along the continuous flight."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest_trajectories import make_fake_city  # noqa: E402

from occworld_tokyo.trajectories import DroneSpec, PlanningError, plan_drone, plan_drone_motion  # noqa: E402
from occworld_tokyo.trajectories.kinematics import frame_angular_velocity_differences, frame_velocity_differences  # noqa: E402
from occworld_tokyo.rotations import angular_velocity_from_quats, quat_rotate  # noqa: E402

SPEC = DroneSpec()
N_FRAMES = 120


@pytest.fixture(scope="module")
def world():
    return make_fake_city()


@pytest.fixture(scope="module")
def flights(world):
    out = {}
    for pattern in ("survey", "orbit", "waypoints"):
        for seed in (0, 1):
            out[pattern, seed] = plan_drone_motion(world, N_FRAMES, 2.0, np.random.default_rng(seed), pattern)
    return out


def _dense(motion, dt=0.01):
    return np.arange(0.0, motion.curve.duration + 1e-9, dt)


@pytest.mark.parametrize("pattern", ["survey", "orbit", "waypoints"])
@pytest.mark.parametrize("seed", [0, 1])
def test_drone_altitude_band_and_clearance_along_continuous_path(world, flights, pattern, seed):
    m = flights[pattern, seed]
    assert m.pattern == pattern
    p = m.curve.position(_dense(m))  # every 0.01 s: <= 0.15 m of travel between checks
    agl = p[:, 2] - world.ground_height(p[:, 0], p[:, 1])
    assert agl.min() >= 30.0 and agl.max() <= 120.0 < 150.0
    gap = p[:, 2] - world.surface_height(p[:, 0], p[:, 1])
    assert gap.min() >= 10.0
    assert not world.is_occupied(p).any()
    # also the frames themselves (the Trajectory is the curve sampled at the frame times)
    tr = m.trajectory
    assert np.allclose(tr.position, m.curve.position(tr.t))
    assert np.allclose(tr.ground, world.ground_height(tr.position[:, 0], tr.position[:, 1]))
    xmin, ymin, xmax, ymax = world.bounds_xy
    assert np.all((p[:, 0] > xmin + 39) & (p[:, 0] < xmax - 39) & (p[:, 1] > ymin + 39) & (p[:, 1] < ymax - 39))


@pytest.mark.parametrize("pattern", ["survey", "orbit", "waypoints"])
def test_drone_speed_acceleration_and_yaw_rate_bands(flights, pattern):
    m = flights[pattern, 0]
    t = _dense(m, 0.02)
    _, v, a, _ = m.curve.derivatives(t)
    speed = np.linalg.norm(v, axis=1)
    assert speed.min() >= 5.0 and speed.max() <= 15.0
    assert np.linalg.norm(a, axis=1).max() <= SPEC.max_accel
    # yaw rate measured from the orientations themselves (finite differences of quaternions)
    q = m.curve.quat(t)
    w = angular_velocity_from_quats(q[:-1], q[1:], np.diff(t))
    assert np.abs(w[:, 2]).max() <= SPEC.max_yaw_rate + 0.05


@pytest.mark.parametrize("pattern", ["survey", "orbit", "waypoints"])
def test_drone_velocities_match_finite_differences(flights, pattern):
    m = flights[pattern, 1]
    h = 1e-3
    t = np.linspace(0.0, m.curve.duration, 400)
    v_fd = (m.curve.position(t + h) - m.curve.position(t - h)) / (2 * h)
    assert np.allclose(m.curve.velocity(t), v_fd, atol=1e-4)
    w_fd = angular_velocity_from_quats(m.curve.quat(t - h), m.curve.quat(t + h), np.full(len(t), 2 * h))
    assert np.allclose(m.curve.angular_velocity(t), w_fd, atol=2e-4)
    # at the frame rate (0.5 s): central differences agree within what the curvature allows
    tr = m.trajectory
    assert np.abs(frame_velocity_differences(tr.t, tr.position) - tr.lin_vel[1:-1]).max() < 0.25
    assert np.abs(frame_angular_velocity_differences(tr.t, tr.quat_xyzw) - tr.ang_vel[1:-1]).max() < 0.03


def test_drone_tilt_follows_thrust_and_yaw_follows_travel(flights):
    m = flights["waypoints", 0]
    t = np.linspace(0.0, m.curve.duration, 300)
    _, v, a, _ = m.curve.derivatives(t)
    q = m.curve.quat(t)
    body_z = quat_rotate(q, np.tile([0.0, 0.0, 1.0], (len(t), 1)))
    thrust = a + [0.0, 0.0, 9.81]
    assert np.allclose(body_z, thrust / np.linalg.norm(thrust, axis=1, keepdims=True), atol=1e-9)
    body_x = quat_rotate(q, np.tile([1.0, 0.0, 0.0], (len(t), 1)))
    heading = np.arctan2(body_x[:, 1], body_x[:, 0])
    assert np.allclose(np.angle(np.exp(1j * (heading - np.arctan2(v[:, 1], v[:, 0])))), 0.0, atol=1e-9)
    tilt = np.degrees(np.arccos(np.clip(body_z[:, 2], -1, 1)))
    assert tilt.max() < np.degrees(np.arctan(SPEC.max_accel / 9.81)) + 1.0


def test_level_drone_and_orbit_looking_at_centre(world):
    spec = DroneSpec(tilt=False, orbit_yaw="center")
    m = plan_drone_motion(world, 80, 2.0, np.random.default_rng(3), "orbit", spec)
    t = np.linspace(0.0, m.curve.duration, 200)
    q = m.curve.quat(t)
    assert np.allclose(quat_rotate(q, np.tile([0.0, 0.0, 1.0], (len(t), 1))), [0, 0, 1], atol=1e-12)
    p = m.curve.position(t)
    cx, cy = m.curve.look_at
    body_x = quat_rotate(q, np.tile([1.0, 0.0, 0.0], (len(t), 1)))
    to_c = np.stack([cx - p[:, 0], cy - p[:, 1]], 1)
    to_c /= np.linalg.norm(to_c, axis=1, keepdims=True)
    assert np.allclose(body_x[:, :2], to_c, atol=1e-9)
    # the centre is a structure at least orbit_min_relief tall, and the flight circles it
    relief = world.surface_height(np.array([cx]), np.array([cy])) - world.ground_height(np.array([cx]), np.array([cy]))
    assert relief[0] >= spec.orbit_min_relief
    r = np.hypot(p[:, 0] - cx, p[:, 1] - cy)
    assert r.max() - r.min() < 0.05 * r.mean()


def test_drone_timestamps_and_default_rate(world):
    tr = plan_drone(world, 7, rng=np.random.default_rng(0))
    assert np.allclose(tr.t, np.arange(7) / 2.0)
    tr = plan_drone(world, 7, 10.0, np.random.default_rng(0), "orbit")
    assert np.allclose(tr.t, np.arange(7) / 10.0) and tr.agent_type == "drone" and tr.pattern == "orbit"


def test_drone_determinism(world):
    a = plan_drone(world, 60, 2.0, np.random.default_rng(11))
    b = plan_drone(world, 60, 2.0, np.random.default_rng(11))
    c = plan_drone(world, 60, 2.0, np.random.default_rng(12))
    for name in ("t", "position", "quat_xyzw", "lin_vel", "ang_vel", "ground"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert a.pattern == b.pattern
    assert not np.allclose(a.position, c.position)


def test_drone_avoids_the_tower_it_cannot_overfly(world):
    # the 150 m tower is taller than the 120 m band allows: no flight may pass over it
    for seed in range(6):
        m = plan_drone_motion(world, 100, 2.0, np.random.default_rng(100 + seed), "waypoints")
        p = m.curve.position(_dense(m, 0.05))
        rel = world.surface_height(p[:, 0], p[:, 1]) - world.ground_height(p[:, 0], p[:, 1])
        assert rel.max() < 120.0 - 10.0


def test_drone_pattern_fallback_is_logged(world, caplog):
    spec = DroneSpec(survey_lane_range=(2000.0, 2000.0))  # a survey lane longer than the tile
    with caplog.at_level(logging.WARNING):
        m = plan_drone_motion(world, 60, 2.0, np.random.default_rng(0), "survey", spec)
    assert m.pattern != "survey" and m.trajectory.pattern == m.pattern and m.requested == "survey"
    assert "survey" in caplog.text


def test_drone_errors():
    tiny = make_fake_city(size=100.0)
    with pytest.raises(PlanningError, match="larger tile"):
        plan_drone(tiny, 50, 2.0, np.random.default_rng(0))
    world = make_fake_city(size=200.0)
    with pytest.raises(ValueError, match="n_frames"):
        plan_drone(world, 0, 2.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="pattern"):
        plan_drone(world, 5, 2.0, np.random.default_rng(0), "loop")
    with pytest.raises(TypeError, match="rng"):
        plan_drone(world, 5, 2.0)
    with pytest.raises(ValueError, match="rate_hz"):
        plan_drone(world, 5, 0.0, np.random.default_rng(0))
