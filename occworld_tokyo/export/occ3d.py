"""`export --format occ3d`: the layout the released OccWorld's dataset reads (REFERENCE s7; wzzheng/OccWorld
dataset/dataset.py):

    OUT_DIR/gts/<scene>/<token>/labels.npz     semantics (200, 200, 16) uint8 (Occ3D classes, 17 = free),
                                               mask_lidar, mask_camera (200, 200, 16) uint8 0/1
    OUT_DIR/samples/CAM_FRONT/<token>.jpg      the camera image (cams['CAM_FRONT']['data_path'], relative)
    OUT_DIR/samples/LIDAR_TOP/<token>.pcd.bin  the lidar in the lidar frame (lidar_path; with --lidar)
    OUT_DIR/occworld_tokyo_infos.pkl           {'infos': {scene: [per-frame dict, time order]}, 'metadata': {...}}
                                               (OccWorld, DOME, OccSora)
    OUT_DIR/occworld_tokyo_infos_flat.pkl      {'infos': [the same dicts, timestamp order], 'metadata': {...}}
                                               (I2-World; flat.py)

Scene = session name, token = '<scene>_<frame:06d>'. Per-frame fields (frames.py for the conventions):
token, scene_name, frame_idx, timestamp (microseconds on the sessions' synthetic clock, flat.py),
ego2global_translation / _rotation (w, x, y, z), lidar2ego_translation / _rotation, gt_ego_fut_trajs (6, 2) per-step
(dx, dy) in the lidar axes (x right, y forward; rows past the session's end are 0), gt_ego_fut_masks (6,), pose_mode
(3,) right / left / straight, cams (CAM_FRONT: data_path, cam_intrinsic 3x3, sensor2ego_rotation (w,x,y,z) /
_translation, sensor2lidar_rotation 3x3 / _translation), and the boxes of the moving agents in the lidar frame:
gt_boxes (N, 7) x, y, z (box centre), l, w, h, yaw (mmdet3d >= 1.0 LiDAR boxes: yaw counter-clockwise from lidar x
to the heading), gt_names (nuScenes names: car, truck, bus, pedestrian; drones are not carried), gt_velocity (N, 2),
num_lidar_pts (lidar returns inside the box), valid_flag (num_lidar_pts > 0), gt_agent_fut_trajs (N, 12) per-step
offsets of the next 6 frames in this frame's lidar axes, gt_agent_fut_masks (N, 6), gt_agent_fut_yaw (N, 6),
gt_agent_fut_goal (N,) (9 = moves less than 1 m, else the 45-degree sector of the final offset), gt_agent_lcf_feat
(N, 9) x, y, yaw, vx, vy, w, l, h, class index (into DETECTION_CLASSES), instance_ids (N,).

The fields I2-World reads besides these (flat.py for its flat list, frames.py for the values): prev / next (the
neighbouring frames' tokens, '' at the ends), occ_path ('<i2world_root>/gts/<scene>/<token>'), lidar_path
('<i2world_root>/samples/LIDAR_TOP/<token>.pcd.bin': float32 (N, 5) x, y, z in the lidar frame, intensity, 0 for the
ring index we do not record; written with `lidar=True` (`--lidar`), else ''), sweeps ([]: the lidar is recorded at
the frame rate only), ego_from_sensor (4x4 lidar -> ego), pose_mat (4x4 lidar -> global), can_bus (18,) and
gt_ego_lcf_feat (9,) from the recorded pose and velocities, gt_ego_fut_cmd (3,) = pose_mode.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from tqdm import tqdm

from occworld_tokyo.export import frames as F
from occworld_tokyo.export.classes import KIND_TO_NUSCENES_NAME, OCC3D_CLASSES, to_occ3d
from occworld_tokyo.export.flat import FLAT_INFO_FILE, flat_list, scene_starts
from occworld_tokyo.export.plan import ExportReport, run_export
from occworld_tokyo.export.source import SourceSession
from occworld_tokyo.export.writing import save_npz, save_pickle

INFO_FILE = "occworld_tokyo_infos.pkl"
DETECTION_CLASSES = ("car", "truck", "construction_vehicle", "bus", "trailer", "barrier", "motorcycle", "bicycle",
                     "pedestrian", "traffic_cone")
FUTURE = 6
I2WORLD_ROOT = "./data/nuscenes"  # where I2-World's configs (data_root 'data/nuscenes/') look for the data


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


def frame_info(s: SourceSession, i: int, objects: list[list[dict]], image_rel: str | None, start_us: int = 0,
               lidar_rel: str | None = None, i2world_root: str = I2WORLD_ROOT) -> dict:
    """The info pickle's dict of frame i (module docstring); `start_us`: the scene's first timestamp (flat.py)."""
    fr = s.frames[i]
    origin = _lidar_origin(s, i)
    T_lidar_ego = F.lidar_to_ego(origin)
    steps, mask = F.ego_future_steps(s.frames, i, FUTURE)
    motion = F.ego_motion(fr, s.poses["lin_vel"][i], s.poses["ang_vel"][i], _accel(s)[i])
    info = {
        "token": token(s.name, i), "scene_name": s.name, "frame_idx": i,
        "timestamp": start_us + int(round(i / s.info.rate_hz * 1e6)),
        "prev": token(s.name, i - 1) if i > 0 else "", "next": token(s.name, i + 1) if i + 1 < s.n else "",
        "ego2global_translation": [fr.x, fr.y, fr.ground_z], "ego2global_rotation": F.yaw_quat_wxyz(fr.yaw).tolist(),
        "lidar2ego_translation": origin.tolist(), "lidar2ego_rotation": F.rotation_wxyz(T_lidar_ego),
        "gt_ego_fut_trajs": steps, "gt_ego_fut_masks": mask, "pose_mode": F.command(steps, mask), "cams": {},
        # I2-World's extra fields (module docstring)
        "occ_path": f"{i2world_root}/gts/{s.name}/{token(s.name, i)}",
        "lidar_path": f"{i2world_root}/{lidar_rel}" if lidar_rel else "", "sweeps": [],
        "ego_from_sensor": T_lidar_ego, "pose_mat": F.ego_to_global(fr) @ T_lidar_ego,
        "can_bus": F.can_bus(fr, motion), "gt_ego_lcf_feat": F.ego_lcf_feat(motion).astype(np.float32),
    }
    info["gt_ego_fut_cmd"] = info["pose_mode"].astype(np.float32)
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


def _accel(s: SourceSession) -> np.ndarray:
    """(T, 3) world-frame acceleration (m/s^2): finite differences of the recorded velocities (central inside,
    one-sided at the ends; 0 for a one-frame session)."""
    v = s.poses["lin_vel"]
    return np.gradient(v, 1.0 / s.info.rate_hz, axis=0) if len(v) > 1 else np.zeros_like(v)


def lidar_bin(s: SourceSession, i: int) -> np.ndarray | None:
    """Frame i's lidar in nuScenes' .pcd.bin layout: float32 (N, 5) x, y, z in the lidar frame (frames.py),
    intensity, 0 (ring index, not recorded); None without lidar."""
    pts = s.lidar(i)
    if pts is None:
        return None
    xyz = F.ego_to_lidar_vec(np.asarray(pts[:, :3], np.float64) - _lidar_origin(s, i))
    out = np.zeros((len(pts), 5), np.float32)
    out[:, :3], out[:, 3] = xyz, pts[:, 3]
    return out


def export_occ3d(sessions_dir: Path, out: Path, progress: bool = True, i2world_root: str = I2WORLD_ROOT,
                 lidar: bool = False) -> ExportReport:
    """`lidar`: also write the point clouds (about 1.2 MB a frame; no consumer here reads them)."""
    def write(sessions, tmp, report, progress):
        _write(sessions, tmp, report, progress, i2world_root.rstrip("/") or ".", lidar)
    return run_export(sessions_dir, out, "occ3d", write, progress)


def _write(sessions: list[SourceSession], tmp: Path, report: ExportReport, progress: bool, i2world_root: str,
           lidar: bool) -> None:
    infos: dict[str, list[dict]] = {}
    problems: list[str] = []
    starts, notes = scene_starts({s.name: int(round((s.n - 1) / s.info.rate_hz * 1e6)) for s in sessions})
    report.notes += notes
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
            lidar_rel = None
            pts = lidar_bin(s, i) if lidar else None
            if pts is not None:
                lidar_rel = f"samples/LIDAR_TOP/{token(s.name, i)}.pcd.bin"
                (tmp / lidar_rel).parent.mkdir(parents=True, exist_ok=True)
                pts.tofile(tmp / lidar_rel)
            infos[s.name].append(frame_info(s, i, objects, image_rel, starts[s.name], lidar_rel, i2world_root))
            bar.update(1)
        report.scenes += 1
        report.frames += s.n
    bar.close()
    metadata = {
        "version": "occworld-tokyo occ3d export 2", "classes": list(OCC3D_CLASSES), "free_index": 17,
        "grid": {"shape": [200, 200, 16], "voxel_size": 0.4, "x_range": [-40, 40], "y_range": [-40, 40],
                 "z_range": [-1.0, 5.4]}, "rate_hz": sorted({s.info.rate_hz for s in sessions}),
        "i2world_root": i2world_root}
    save_pickle(tmp / INFO_FILE, {"infos": infos, "metadata": metadata})
    save_pickle(tmp / FLAT_INFO_FILE, {"infos": flat_list(infos), "metadata": metadata})
    report.notes += problems[:20]
