"""`export --format uniocc`: UniOcc's layout (tasl-lab/UniOcc README and uniocc_dataset.py):

    OUT_DIR/scene_infos.pkl            [{'scene_name', 'occ_in_scene_paths': ['<scene>/<t>.npz', ...], 'rate_hz', ...}]
    OUT_DIR/<scene>/<t>.npz            per frame t (0-based), read with np.load(allow_pickle=True):
        occ_label (200, 200, 16) uint8           UniOcc's own label ids (classes.py: 1 car, 4 pedestrian, 7 road,
                                                 9 building, ..., 10 free)
        occ_mask_camera (200, 200, 16) uint8     1 = seen by the camera
        occ_flow_forward (200, 200, 16, 3) float32   per occupied voxel: where its corner point is in frame t+1's
                                                     ego frame minus where it is now, in voxels (flow.py; 0 in the
                                                     last frame and for free voxels)
        occ_flow_backward (200, 200, 16, 3) float32  the same towards frame t-1 (0 in the first frame)
        ego_to_world_transformation (4, 4)       ego (frames.py) -> world
        cameras  object array of dicts: name, filename (relative to OUT_DIR), intrinsics 3x3, extrinsics 4x4
                 camera -> lidar (frames.py)
        annotations  object array of dicts, the moving agents: token (our instance id as text), agent_to_ego 4x4,
                 agent_to_world 4x4, size (length, width, height) m, category_id (UniOcc's id: 1 car for every
                 vehicle kind, 4 pedestrian, 0 other for drones), category_name (our kind: car, van, bus, truck,
                 pedestrian, drone), velocity_ego (3,) m/s (world velocity in ego axes)
OUT_DIR/images/<scene>/<t>_CAM_FRONT.jpg  the camera images.

Flow (flow.py): static voxels are fixed in the world, agent voxels move rigidly with their agent's annotated pose
change from t to t+1 (rotation included), both expressed in the neighbour frame's grid, so the ego's own motion is
part of every voxel's flow, as in UniOcc's generator (uniocc_flow_gen.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from tqdm import tqdm

from occworld_tokyo.export import frames as F
from occworld_tokyo.export.classes import UNIOCC_CLASSES, UNIOCC_FREE, to_uniocc, uniocc_category
from occworld_tokyo.export.flow import voxel_flow
from occworld_tokyo.export.plan import ExportReport, run_export
from occworld_tokyo.export.source import SourceSession
from occworld_tokyo.export.writing import save_npz, save_pickle
from occworld_tokyo.labels import FREE
from occworld_tokyo.rotations import quat_to_matrix, rigid


def agent_to_ego(o: dict) -> np.ndarray:
    """4x4 agent box -> ego of an annotation (centre in the ego frame, `rotation` quaternion (w, x, y, z), else
    `yaw`); the box frame is x forward (length), y left (width), z up."""
    if "rotation" in o:
        w, x, y, z = (float(v) for v in o["rotation"])
        R = quat_to_matrix(np.array([x, y, z, w]))
    else:
        c, sn = np.cos(o["yaw"]), np.sin(o["yaw"])
        R = np.array([[c, -sn, 0.0], [sn, c, 0.0], [0.0, 0.0, 1.0]])
    return rigid(R, np.asarray(o["center"], np.float64))


def frame_flow(s: SourceSession, t: int, u: int, occupancy: np.ndarray, instances: np.ndarray,
               objects: list[list[dict]]) -> np.ndarray:
    """(X, Y, Z, 3) float32 flow in voxels from frame t's grid to frame u's (0 when u is outside the session)."""
    if not (0 <= u < s.n):
        return np.zeros(np.shape(occupancy) + (3,), np.float32)
    return voxel_flow(np.asarray(occupancy) != FREE, instances, F.ego_to_global(s.frames[t]),
                      F.ego_to_global(s.frames[u]), {int(o["id"]): agent_to_ego(o) for o in objects[t]},
                      {int(o["id"]): agent_to_ego(o) for o in objects[u]},
                      {int(o["id"]): np.asarray(o["velocity"], np.float64) for o in objects[t]},
                      (u - t) / s.info.rate_hz)


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
            sem = to_uniocc(arr["occupancy"])
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
                a2e = agent_to_ego(o)
                anns.append({"token": str(o["id"]), "agent_to_ego": a2e,
                             "agent_to_world": F.ego_to_global(s.frames[i]) @ a2e,
                             "size": np.asarray(o["size"], np.float64), "category_id": uniocc_category(o),
                             "category_name": str(o.get("kind", o.get("class"))),
                             "velocity_ego": np.asarray(o["velocity"], np.float64)})
            rel = f"{s.name}/{i}.npz"
            mask = arr["mask_camera"].astype(np.uint8) if "mask_camera" in arr else np.ones(sem.shape, np.uint8)
            save_npz(tmp / rel, occ_label=sem, occ_mask_camera=mask,
                     occ_flow_forward=frame_flow(s, i, i + 1, arr["occupancy"], arr["instances"], objects),
                     occ_flow_backward=frame_flow(s, i, i - 1, arr["occupancy"], arr["instances"], objects),
                     ego_to_world_transformation=F.ego_to_global(s.frames[i]),
                     cameras=np.array(cameras, dtype=object), annotations=np.array(anns, dtype=object))
            paths.append(rel)
            bar.update(1)
        scene_infos.append({"scene_name": s.name, "occ_in_scene_paths": paths, "start_frame": 0,
                            "end_frame": s.n - 1, "rate_hz": s.info.rate_hz, "agent_type": s.info.agent_type,
                            "classes": list(UNIOCC_CLASSES), "free_label": UNIOCC_FREE})
        report.scenes += 1
        report.frames += s.n
    bar.close()
    save_pickle(tmp / "scene_infos.pkl", scene_infos)
