"""Pose and sensor conventions of the exports (one place for the frame maths of both formats).

Frames (world: the session's x east, y north, z up, metres):
- ego: our yaw-only ego grid frame (docs/data_format.md): origin at the agent's x, y and at `ground_height`,
  x forward, y left, z up. It is nuScenes' ego convention, and the exported occupancy is indexed in it.
  ego2global = translation (x, y, ground_height), rotation = the yaw about z as a quaternion (w, x, y, z).
- lidar: nuScenes' LIDAR_TOP axes, x right, y forward, z up (the ego axes turned -90 deg about z), origin at the
  lidar sensor (body position + mount), gravity aligned. gt_ego_fut_trajs, gt_boxes and the agents' future
  trajectories are in these axes.
- camera: OpenCV (x right, y down, z forward); sensor2ego / sensor2lidar map camera points into ego / lidar.
"""

from __future__ import annotations

import numpy as np

from occworld_tokyo.grid import EgoFrame
from occworld_tokyo.rotations import quat_from_euler, quat_from_matrix, quat_to_matrix

R_LIDAR_TO_EGO = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # lidar x right, y forward
COMMAND_THRESHOLD_M = 2.0  # lateral offset at the end of the future that makes a turn command
COMMANDS = ("right", "left", "straight")


def wxyz(q_xyzw: np.ndarray) -> np.ndarray:
    q = np.asarray(q_xyzw, dtype=np.float64)
    return np.concatenate([q[..., 3:], q[..., :3]], axis=-1)


def yaw_quat_wxyz(yaw: float) -> np.ndarray:
    return wxyz(quat_from_euler(np.array(yaw), np.array(0.0), np.array(0.0)))


def ego_to_lidar_vec(v_ego: np.ndarray) -> np.ndarray:
    """Vectors in ego axes (x forward, y left) -> lidar axes (x right, y forward); z unchanged."""
    v = np.asarray(v_ego, dtype=np.float64)
    return v @ R_LIDAR_TO_EGO  # R^T v for row vectors


def ego_to_global(frame: EgoFrame) -> np.ndarray:
    """4x4 ego -> world."""
    c, s = np.cos(frame.yaw), np.sin(frame.yaw)
    T = np.eye(4)
    T[:3, :3] = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
    T[:3, 3] = [frame.x, frame.y, frame.ground_z]
    return T


def lidar_to_ego(lidar_origin_ego: np.ndarray) -> np.ndarray:
    """4x4 lidar -> ego for a gravity-aligned lidar at `lidar_origin_ego` (ego frame, m)."""
    T = np.eye(4)
    T[:3, :3] = R_LIDAR_TO_EGO
    T[:3, 3] = lidar_origin_ego
    return T


def sensor_origin_ego(frame: EgoFrame, position: np.ndarray, quat_xyzw: np.ndarray, mount_xyz) -> np.ndarray:
    """Ego-frame position of a sensor mounted at `mount_xyz` (body frame) on the agent at `position` (world)."""
    world = np.asarray(position, np.float64) + quat_to_matrix(quat_xyzw) @ np.asarray(mount_xyz, np.float64)
    return frame.world_to_ego(world)


def camera_to_ego(frame: EgoFrame, position: np.ndarray, quat_xyzw: np.ndarray, T_body_cam: np.ndarray) -> np.ndarray:
    """4x4 camera (OpenCV) -> ego of this frame (the body may pitch and roll; the ego frame does not)."""
    T_body_cam = np.asarray(T_body_cam, dtype=np.float64)
    R_world_cam = quat_to_matrix(quat_xyzw) @ T_body_cam[:3, :3]
    T = np.eye(4)
    T[:3, :3] = frame.rotate_to_ego(R_world_cam.T).T
    T[:3, 3] = sensor_origin_ego(frame, position, quat_xyzw, T_body_cam[:3, 3])
    return T


def rotation_wxyz(T: np.ndarray) -> list[float]:
    return wxyz(quat_from_matrix(np.asarray(T)[:3, :3])).tolist()


def ego_future_steps(frames: list[EgoFrame], i: int, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) per-step (dx, dy) of the ego from frame i + k to i + k + 1, in the LIDAR axes of frame i
    (x right, y forward), and the (n,) validity mask (0 past the session's end, rows zero there)."""
    steps, mask = np.zeros((n, 2)), np.zeros(n)
    here = frames[i]
    pts = [here.world_to_ego(np.array([f.x, f.y, f.ground_z]))[:2] for f in frames[i:i + n + 1]]
    for k in range(len(pts) - 1):
        d = np.array([pts[k + 1][0] - pts[k][0], pts[k + 1][1] - pts[k][1], 0.0])
        steps[k] = ego_to_lidar_vec(d)[:2]
        mask[k] = 1.0
    return steps, mask


def command(steps: np.ndarray, mask: np.ndarray, threshold: float = COMMAND_THRESHOLD_M) -> np.ndarray:
    """(3,) one-hot right / left / straight from the lateral (lidar x, right positive) offset at the end of the
    valid future: >= threshold right, <= -threshold left, else straight."""
    lateral = float((steps[:, 0] * mask).sum())
    out = np.zeros(3)
    out[0 if lateral >= threshold else 1 if lateral <= -threshold else 2] = 1.0
    return out


KAPPA_MIN_SPEED = 0.5  # m/s: below it the path curvature (yaw rate / speed) is written as 0


def ego_motion(frame: EgoFrame, lin_vel: np.ndarray, ang_vel: np.ndarray, accel: np.ndarray) -> dict[str, np.ndarray]:
    """The ego's recorded motion of one frame in ego axes (x forward, y left, z up): velocity (3,) m/s, angular
    velocity (3,) rad/s and acceleration (3,) m/s^2 (kinematic, without gravity), from world-frame vectors."""
    return {"vel": frame.rotate_to_ego(lin_vel), "rate": frame.rotate_to_ego(ang_vel),
            "accel": frame.rotate_to_ego(accel)}


def can_bus(frame: EgoFrame, motion: dict[str, np.ndarray]) -> np.ndarray:
    """(18,) the nuScenes CAN-bus 'pose' vector as the nuScenes converters lay it out: pos (3) = ego2global
    translation, orientation (4) = ego2global rotation (w, x, y, z), accel (3), rotation_rate (3), vel (3) in ego
    axes, then 2 zeros. Ours come from the recorded pose and its velocities, not from a CAN bus (none exists)."""
    return np.concatenate([[frame.x, frame.y, frame.ground_z], yaw_quat_wxyz(frame.yaw), motion["accel"],
                           motion["rate"], motion["vel"], [0.0, 0.0]])


def ego_lcf_feat(motion: dict[str, np.ndarray], length: float = 0.0, width: float = 0.0) -> np.ndarray:
    """(9,) VAD's gt_ego_lcf_feat: vx, vy, ax, ay in the lidar axes (x right, y forward; m/s, m/s^2), w = yaw rate
    (rad/s, counter-clockwise), length, width (m: 0 when not recorded), v0 = forward speed (m/s), kappa = path
    curvature w / v0 (1/m, positive turning left; 0 below KAPPA_MIN_SPEED)."""
    v, a = ego_to_lidar_vec(motion["vel"]), ego_to_lidar_vec(motion["accel"])
    w, v0 = float(motion["rate"][2]), float(motion["vel"][0])
    kappa = w / v0 if abs(v0) >= KAPPA_MIN_SPEED else 0.0
    return np.array([v[0], v[1], a[0], a[1], w, length, width, v0, kappa])
