"""`export --format occ3d`: the layout the released OccWorld's dataset reads (REFERENCE s7; wzzheng/OccWorld
dataset/dataset.py):

    OUT_DIR/gts/<scene>/<token>/labels.npz     semantics (200, 200, 16) uint8 (Occ3D classes, 17 = free),
                                               mask_lidar, mask_camera (200, 200, 16) uint8 0/1
    OUT_DIR/samples/CAM_FRONT/<token>.jpg      the camera image (cams['CAM_FRONT']['data_path'], relative)
    OUT_DIR/occworld_tokyo_infos.pkl           {'infos': {scene: [per-frame dict, time order]}, 'metadata': {...}}

Scene = session name, token = '<scene>_<frame:06d>'. Per-frame fields (frames.py for the conventions):
token, scene_name, frame_idx, timestamp (microseconds since the session start), ego2global_translation /
_rotation (w, x, y, z), lidar2ego_translation / _rotation, gt_ego_fut_trajs (6, 2) per-step (dx, dy) in the lidar
axes (x right, y forward; rows past the session's end are 0), gt_ego_fut_masks (6,), pose_mode (3,) right / left /
straight, cams (CAM_FRONT: data_path, cam_intrinsic 3x3, sensor2ego_rotation (w,x,y,z) / _translation,
sensor2lidar_rotation 3x3 / _translation), and the boxes of the moving agents in the lidar frame: gt_boxes (N, 7)
x, y, z (box centre), l, w, h, yaw (mmdet3d >= 1.0 LiDAR boxes: yaw counter-clockwise from lidar x to the
heading), gt_names (nuScenes names: car, truck, bus, pedestrian; drones are not carried), gt_velocity (N, 2),
num_lidar_pts (lidar returns inside the box), valid_flag (num_lidar_pts > 0), gt_agent_fut_trajs (N, 12) per-step
offsets of the next 6 frames in this frame's lidar axes, gt_agent_fut_masks (N, 6), gt_agent_fut_yaw (N, 6),
gt_agent_fut_goal (N,) (9 = moves less than 1 m, else the 45-degree sector of the final offset),
gt_agent_lcf_feat (N, 9) x, y, yaw, vx, vy, w, l, h, class index (into DETECTION_CLASSES), instance_ids (N,).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from tqdm import tqdm

from occworld_tokyo.export import frames as F
from occworld_tokyo.export.classes import KIND_TO_NUSCENES_NAME, OCC3D_CLASSES, to_occ3d
from occworld_tokyo.export.plan import ExportReport, run_export
from occworld_tokyo.export.source import SourceSession
from occworld_tokyo.export.writing import save_npz, save_pickle

INFO_FILE = "occworld_tokyo_infos.pkl"
DETECTION_CLASSES = ("car", "truck", "construction_vehicle", "bus", "trailer", "barrier", "motorcycle", "bicycle",
                     "pedestrian", "traffic_cone")
FUTURE = 6


def token(scene: str, i: int) -> str:
    return f"{scene}_{i:06d}"


def _lidar_origin(s: SourceSession, i: int) -> np.ndarray:
    lidar = ((s.meta.get("sensors") or {}).get("lidar") or {})
    return F.sensor_origin_ego(s.frames[i], s.poses["position"][i], s.poses["quat"][i], lidar.get("mount_xyz", (0, 0, 0)))


def _points_in_boxes(points: np.ndarray | None, objs: list[dict]) -> np.ndarray:
    out = np.zeros(len(objs), dtype=np.int64)
    if points is None or not len(objs):
        return out
    p = points[:, :3].astype(np.float64)
    for k, o in enumerate(objs):
        d = p - np.asarray(o["center"])
        c, s = np.cos(o["yaw"]), np.sin(o["yaw"])
        local = np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], d[:, 2]], axis=1)
        out[k] = int(np.all(np.abs(local) <= np.asarray(o["size"]) / 2, axis=1).sum())
    return out


def _boxes(s: SourceSession, i: int, objects: list[list[dict]], lidar_origin: np.ndarray) -> dict:
    """The agents of frame i as nuScenes/VAD info fields in frame i's lidar frame (module docstring)."""
    objs = [o for o in objects[i] if o.get("kind") in KIND_TO_NUSCENES_NAME]
    n = len(objs)
    here = s.frames[i]
    boxes, vel, fut, fut_mask, fut_yaw, lcf = (np.zeros((n, 7)), np.zeros((n, 2)), np.zeros((n, 2 * FUTURE)),
                                              np.zeros((n, FUTURE)), np.zeros((n, FUTURE)), np.zeros((n, 9)))
    goal = np.full(n, 9.0)
    names = np.array([KIND_TO_NUSCENES_NAME[o["kind"]] for o in objs], dtype="<U32")
    for k, o in enumerate(objs):
        c = F.ego_to_lidar_vec(np.asarray(o["center"], np.float64) - lidar_origin)
        yaw = float(o["yaw"]) + np.pi / 2  # heading from lidar x (right) = ego yaw + 90 deg
        l, w, h = o["size"]
        boxes[k] = [*c, l, w, h, yaw]
        vel[k] = F.ego_to_lidar_vec(np.asarray(o["velocity"], np.float64))[:2]
        lcf[k] = [c[0], c[1], yaw, vel[k, 0], vel[k, 1], w, l, h, DETECTION_CLASSES.index(names[k])]
        prev = np.asarray(o["center"], np.float64)
        for t in range(FUTURE):
            j = i + 1 + t
            nxt = next((p for p in objects[j] if p["id"] == o["id"]), None) if j < s.n else None
            if nxt is None:
                break
            here_c = here.world_to_ego(s.frames[j].ego_to_world(np.asarray(nxt["center"], np.float64)))
            fut[k, 2 * t:2 * t + 2] = F.ego_to_lidar_vec(here_c - prev)[:2]
            fut_mask[k, t] = 1.0
            fut_yaw[k, t] = float(nxt["yaw"]) + s.frames[j].yaw - here.yaw + np.pi / 2
            prev = here_c
        total = fut.reshape(-1, FUTURE, 2)[k].sum(axis=0)
        if np.linalg.norm(total) >= 1.0:
            goal[k] = float(np.floor((np.arctan2(total[1], total[0]) + np.pi) / (np.pi / 4)) % 8)
    pts = _points_in_boxes(s.lidar(i), objs)
    return {"gt_boxes": boxes, "gt_names": names, "gt_velocity": vel, "num_lidar_pts": pts,
            "valid_flag": pts > 0, "gt_agent_fut_trajs": fut, "gt_agent_fut_masks": fut_mask,
            "gt_agent_fut_yaw": fut_yaw, "gt_agent_fut_goal": goal, "gt_agent_lcf_feat": lcf,
            "instance_ids": np.array([o["id"] for o in objs], dtype=np.int64)}


def frame_info(s: SourceSession, i: int, objects: list[list[dict]], image_rel: str | None) -> dict:
    """The info pickle's dict of frame i (module docstring)."""
    fr = s.frames[i]
    origin = _lidar_origin(s, i)
    T_lidar_ego = F.lidar_to_ego(origin)
    steps, mask = F.ego_future_steps(s.frames, i, FUTURE)
    info = {
        "token": token(s.name, i), "scene_name": s.name, "frame_idx": i,
        "timestamp": int(round(i / s.info.rate_hz * 1e6)),
        "ego2global_translation": [fr.x, fr.y, fr.ground_z], "ego2global_rotation": F.yaw_quat_wxyz(fr.yaw).tolist(),
        "lidar2ego_translation": origin.tolist(), "lidar2ego_rotation": F.rotation_wxyz(T_lidar_ego),
        "gt_ego_fut_trajs": steps, "gt_ego_fut_masks": mask, "pose_mode": F.command(steps, mask), "cams": {},
    }
    cam = (s.meta.get("sensors") or {}).get("camera")
    if cam and image_rel is not None:
        T_cam_ego = F.camera_to_ego(fr, s.poses["position"][i], s.poses["quat"][i], cam["extrinsics"]["T_body_cam"])
        T_cam_lidar = np.linalg.inv(T_lidar_ego) @ T_cam_ego
        info["cams"]["CAM_FRONT"] = {
            "data_path": image_rel, "type": "CAM_FRONT", "cam_intrinsic": np.asarray(cam["intrinsics"]["K"]),
            "sensor2ego_translation": T_cam_ego[:3, 3].tolist(), "sensor2ego_rotation": F.rotation_wxyz(T_cam_ego),
            "sensor2lidar_translation": T_cam_lidar[:3, 3], "sensor2lidar_rotation": T_cam_lidar[:3, :3],
        }
    info.update(_boxes(s, i, objects, origin))
    return info


def export_occ3d(sessions_dir: Path, out: Path, progress: bool = True) -> ExportReport:
    return run_export(sessions_dir, out, "occ3d", _write, progress)


def _write(sessions: list[SourceSession], tmp: Path, report: ExportReport, progress: bool) -> None:
    infos: dict[str, list[dict]] = {}
    problems: list[str] = []
    bar = tqdm(total=sum(s.n for s in sessions), unit="frame", desc="export occ3d", disable=not progress)
    for s in sessions:
        objects = [s.objects(i) for i in range(s.n)]
        infos[s.name] = []
        for i in range(s.n):
            arr = s.occupancy(i)
            sem, bad = to_occ3d(arr["occupancy"], arr["instances"], objects[i])
            problems += [f"{s.name} frame {i}: {b}" for b in bad]
            ones = np.ones(sem.shape, np.uint8)
            save_npz(tmp / "gts" / s.name / token(s.name, i) / "labels.npz", semantics=sem,
                     mask_lidar=arr["mask_lidar"].astype(np.uint8) if "mask_lidar" in arr else ones,
                     mask_camera=arr["mask_camera"].astype(np.uint8) if "mask_camera" in arr else ones)
            image_rel = None
            if s.image_path(i) is not None:
                image_rel = f"samples/CAM_FRONT/{token(s.name, i)}.jpg"
                (tmp / image_rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(s.image_path(i), tmp / image_rel)
            infos[s.name].append(frame_info(s, i, objects, image_rel))
            bar.update(1)
        report.scenes += 1
        report.frames += s.n
    bar.close()
    save_pickle(tmp / INFO_FILE, {"infos": infos, "metadata": {
        "version": "occworld-tokyo occ3d export 1", "classes": list(OCC3D_CLASSES), "free_index": 17,
        "grid": {"shape": [200, 200, 16], "voxel_size": 0.4, "x_range": [-40, 40], "y_range": [-40, 40],
                 "z_range": [-1.0, 5.4]}, "rate_hz": sorted({s.info.rate_hz for s in sessions})}})
    report.notes += problems[:20]
