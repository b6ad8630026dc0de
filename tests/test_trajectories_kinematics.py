"""Pure kinematics helpers: quaternions, Euler angles, angular velocity, finite differences."""

from __future__ import annotations

import numpy as np

from occworld_tokyo.rotations import (angular_velocity_from_euler, angular_velocity_from_quats, euler_from_quat,
                                      quat_from_euler, quat_multiply, quat_rotate, quat_to_matrix, unwrap_yaw,
                                      wrap_angle)
from occworld_tokyo.trajectories.kinematics import central_difference


def _rz(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _ry(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rx(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def test_quat_from_euler_matches_rotation_matrices():
    rng = np.random.default_rng(1)
    yaw, pitch, roll = rng.uniform(-3, 3, 50), rng.uniform(-1.2, 1.2, 50), rng.uniform(-1.2, 1.2, 50)
    q = quat_from_euler(yaw, pitch, roll)
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0)
    for k in range(50):
        expected = _rz(yaw[k]) @ _ry(pitch[k]) @ _rx(roll[k])
        assert np.allclose(quat_to_matrix(q[k]), expected, atol=1e-12)
    y2, p2, r2 = euler_from_quat(q)
    assert np.allclose(wrap_angle(y2 - yaw), 0, atol=1e-9)
    assert np.allclose(p2, pitch) and np.allclose(r2, roll)


def test_sign_conventions_body_axes():
    # yaw 90 deg: body x (forward) points north (world +y)
    q = quat_from_euler(np.pi / 2, 0.0, 0.0)
    assert np.allclose(quat_rotate(q, [1, 0, 0]), [0, 1, 0], atol=1e-12)
    # positive pitch puts the nose down
    q = quat_from_euler(0.0, 0.2, 0.0)
    assert quat_rotate(q, [1, 0, 0])[2] < 0
    # positive roll raises the left side (body +y goes up)
    q = quat_from_euler(0.0, 0.0, 0.2)
    assert np.isclose(quat_rotate(q, [0, 1, 0])[2], np.sin(0.2))  # R_x(roll) e_y = (0, cos, sin)


def test_quat_multiply_composes_rotations():
    a = quat_from_euler(0.3, 0.1, -0.2)
    b = quat_from_euler(-1.0, 0.4, 0.5)
    assert np.allclose(quat_to_matrix(quat_multiply(a, b)), quat_to_matrix(a) @ quat_to_matrix(b))


def test_angular_velocity_from_euler_matches_quaternion_differences():
    def angles(t):
        return 0.7 * np.sin(0.9 * t) + 0.3 * t, 0.2 * np.cos(1.3 * t), 0.15 * np.sin(2.1 * t + 0.4)

    def rates(t):
        return 0.63 * np.cos(0.9 * t) + 0.3, -0.26 * np.sin(1.3 * t), 0.315 * np.cos(2.1 * t + 0.4)

    t = np.linspace(0, 10, 41)
    h = 1e-4
    y, p, _ = angles(t)
    dy, dp, dr = rates(t)
    w = angular_velocity_from_euler(y, p, dy, dp, dr)
    w_fd = angular_velocity_from_quats(quat_from_euler(*angles(t - h)), quat_from_euler(*angles(t + h)),
                                       np.full(len(t), 2 * h))
    assert np.allclose(w, w_fd, atol=1e-6)


def test_angular_velocity_from_quats_pure_yaw():
    q0 = quat_from_euler(np.array([3.1]), 0.0, 0.0)
    q1 = quat_from_euler(np.array([-3.1]), 0.0, 0.0)  # +0.083 rad across the +-pi seam
    w = angular_velocity_from_quats(q0, q1, 0.5)
    assert np.allclose(w, [[0, 0, (2 * np.pi - 6.2) / 0.5]], atol=1e-12)


def test_central_difference_and_unwrap():
    t = np.linspace(0, 2, 11)
    assert np.allclose(central_difference(np.sin, t, 1e-5), np.cos(t), atol=1e-8)
    yaw = wrap_angle(np.linspace(0, 10, 200))
    assert np.allclose(unwrap_yaw(yaw), np.linspace(0, 10, 200))


def test_quat_is_canonical():
    q = quat_from_euler(np.array([np.pi, -np.pi + 1e-3, 3.0]), 0.0, 0.0)
    assert np.all(q[:, 3] >= 0)


def test_quat_from_matrix_inverts_quat_to_matrix():
    from occworld_tokyo.rotations import quat_from_matrix, quat_to_matrix

    rng = np.random.default_rng(0)
    q = rng.normal(size=(2000, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q[q[:, 3] < 0] *= -1  # the canonical sign (w >= 0) it returns
    q[:4] = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]  # each branch's largest component, exactly
    assert np.allclose(quat_from_matrix(quat_to_matrix(q)), q, atol=1e-12)
    assert np.allclose(quat_from_matrix(np.eye(3)), [0, 0, 0, 1])
