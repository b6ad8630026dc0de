"""`export --format uniocc`: UniOcc's layout (tasl-lab/UniOcc README and uniocc_dataset.py):

    OUT_DIR/scene_infos.pkl            [{'scene_name', 'occ_in_scene_paths': ['<scene>/<t>.npz', ...], 'rate_hz', ...}]
    OUT_DIR/<scene>/<t>.npz            per frame t (0-based), read with np.load(allow_pickle=True):
        occ_label (200, 200, 16) uint8           Occ3D classes (classes.py; 17 = free)
        occ_mask_camera (200, 200, 16) uint8     1 = seen by the camera
        occ_flow_forward (200, 200, 16, 3) float32   per occupied voxel: where it is in frame t+1's grid, minus
                                                     where it is now, in voxels (0 in the last frame and for free)
        occ_flow_backward (200, 200, 16, 3) float32  the same towards frame t-1 (0 in the first frame)
        ego_to_world_transformation (4, 4)       ego (frames.py) -> world
        cameras  object array of dicts: name, filename (relative to OUT_DIR), intrinsics 3x3, extrinsics 4x4
                 camera -> lidar (frames.py)
        annotations  object array of dicts, the moving agents: token (our instance id as text), agent_to_ego 4x4,
                 agent_to_world 4x4, size (length, width, height) m, category_id (the Occ3D class id: 4 car,
                 3 bus, 10 truck, 7 pedestrian, 0 other for drones), category_name, velocity_ego (3,) m/s
OUT_DIR/images/<scene>/<t>_CAM_FRONT.jpg  the camera images.

Flow from velocities: a voxel of agent a moves with a's velocity (annotation, world velocity in ego axes) for
one frame interval; a static voxel stays in the world. Both are then expressed in the neighbour frame's grid, so
the ego's own motion is part of every voxel's flow, as in UniOcc.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from tqdm import tqdm

from occworld_tokyo import labels as L
from occworld_tokyo.export import frames as F
from occworld_tokyo.export.classes import LABEL_TO_OCC3D, VEHICLE_KIND_TO_OCC3D, to_occ3d
from occworld_tokyo.export.plan import ExportReport, run_export
from occworld_tokyo.export.source import SourceSession
from occworld_tokyo.export.writing import save_npz, save_pickle
from occworld_tokyo.grid import OCC3D_GRID


def _category(o: dict) -> int:
    if int(o.get("label", -1)) == L.VEHICLE:
        return VEHICLE_KIND_TO_OCC3D.get(str(o.get("kind")), 4)
    return int(LABEL_TO_OCC3D[int(o.get("label", L.OTHER))])


def voxel_flow(s: SourceSession, i: int, j: int, occupancy: np.ndarray, instances: np.ndarray,
               objects: list[dict]) -> np.ndarray:
    """(X, Y, Z, 3) float32 flow in voxels from frame i's grid to frame j's (j = i +- 1), module docstring."""
    flow = np.zeros(occupancy.shape + (3,), np.float32)
    if not (0 <= j < s.n):
        return flow
    idx = np.argwhere(occupancy > 0)
    if not len(idx):
        return flow
    vs = np.asarray(OCC3D_GRID.voxel_size)
    centre = OCC3D_GRID.lower + (idx + 0.5) * vs  # ego frame i
    moved = centre.copy()
    dt = (j - i) / s.info.rate_hz
    vel = {int(o["id"]): np.asarray(o["velocity"], np.float64) for o in objects}
    inst = instances[tuple(idx.T)]
    for a, v in vel.items():
        sel = inst == a
        moved[sel] += v * dt
    world = s.frames[i].ego_to_world(moved)
    there = s.frames[j].world_to_ego(world)
    flow[tuple(idx.T)] = ((there - centre) / vs).astype(np.float32)
    return flow


def _agent_transforms(s: SourceSession, i: int, o: dict) -> tuple[np.ndarray, np.ndarray]:
    c, sn = np.cos(o["yaw"]), np.sin(o["yaw"])
    a2e = np.eye(4)
    a2e[:3, :3] = [[c, -sn, 0.0], [sn, c, 0.0], [0.0, 0.0, 1.0]]
    a2e[:3, 3] = o["center"]
    return a2e, F.ego_to_global(s.frames[i]) @ a2e


def export_uniocc(sessions_dir: Path, out: Path, progress: bool = True) -> ExportReport:
    return run_export(sessions_dir, out, "uniocc", _write, progress)


def _write(sessions: list[SourceSession], tmp: Path, report: ExportReport, progress: bool) -> None:
    scene_infos = []
    bar = tqdm(total=sum(s.n for s in sessions), unit="frame", desc="export uniocc", disable=not progress)
    for s in sessions:
        objects = [s.objects(i) for i in range(s.n)]
        paths = []
        cam = (s.meta.get("sensors") or {}).get("camera")
        lidar = (s.meta.get("sensors") or {}).get("lidar") or {}
        for i in range(s.n):
            arr = s.occupancy(i)
            sem, _ = to_occ3d(arr["occupancy"], arr["instances"], objects[i])
            cameras = []
            if cam and s.image_path(i) is not None:
                rel = f"images/{s.name}/{i}_CAM_FRONT.jpg"
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(s.image_path(i), tmp / rel)
                fr, pos, q = s.frames[i], s.poses["position"][i], s.poses["quat"][i]
                T_lidar_ego = F.lidar_to_ego(F.sensor_origin_ego(fr, pos, q, lidar.get("mount_xyz", (0, 0, 0))))
                T_cam_ego = F.camera_to_ego(fr, pos, q, cam["extrinsics"]["T_body_cam"])
                cameras.append({"name": "CAM_FRONT", "filename": rel, "intrinsics": np.asarray(cam["intrinsics"]["K"]),
                                "extrinsics": np.linalg.inv(T_lidar_ego) @ T_cam_ego})
            anns = []
            for o in objects[i]:
                a2e, a2w = _agent_transforms(s, i, o)
                anns.append({"token": str(o["id"]), "agent_to_ego": a2e, "agent_to_world": a2w,
                             "size": np.asarray(o["size"], np.float64), "category_id": _category(o),
                             "category_name": str(o.get("kind", o.get("class"))),
                             "velocity_ego": np.asarray(o["velocity"], np.float64)})
            rel = f"{s.name}/{i}.npz"
            mask = arr["mask_camera"].astype(np.uint8) if "mask_camera" in arr else np.ones(sem.shape, np.uint8)
            save_npz(tmp / rel, occ_label=sem, occ_mask_camera=mask,
                     occ_flow_forward=voxel_flow(s, i, i + 1, arr["occupancy"], arr["instances"], objects[i]),
                     occ_flow_backward=voxel_flow(s, i, i - 1, arr["occupancy"], arr["instances"], objects[i]),
                     ego_to_world_transformation=F.ego_to_global(s.frames[i]),
                     cameras=np.array(cameras, dtype=object), annotations=np.array(anns, dtype=object))
            paths.append(rel)
            bar.update(1)
        scene_infos.append({"scene_name": s.name, "occ_in_scene_paths": paths, "start_frame": 0,
                            "end_frame": s.n - 1, "rate_hz": s.info.rate_hz, "agent_type": s.info.agent_type})
        report.scenes += 1
        report.frames += s.n
    bar.close()
    save_pickle(tmp / "scene_infos.pkl", scene_infos)
