"""Writing one frame and one session's meta.json in the guide's layout (see layout.py).

Everything here is deterministic: the same inputs give byte-identical files.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from occworld_tokyo.sessions import layout
from occworld_tokyo.trajectories.trajectory import Trajectory


@dataclass
class FrameData:
    """Everything one frame writes. Sensor fields are None when sensors are off."""

    occupancy: np.ndarray  # (200, 200, 121) uint8 label ids
    instances: np.ndarray  # (200, 200, 121) int32 instance ids
    ground_height: float  # world z of the grid's z = 0 plane
    mask_lidar: np.ndarray | None = None  # (200, 200, 121) bool
    mask_camera: np.ndarray | None = None  # (200, 200, 121) bool
    lidar: np.ndarray | None = None  # (N, 4) float32
    image_jpeg: bytes | None = None
    annotations: list[dict] | None = None  # moving agents' boxes in the ego frame (occworld_tokyo.agents)


def _xyz(v: np.ndarray) -> dict[str, float]:
    return {"x": float(v[0]), "y": float(v[1]), "z": float(v[2])}


def pose_record(traj: Trajectory, i: int, ground_height: float) -> dict:
    """The pose JSON of frame i (schema in docs/data_format.md)."""
    q = traj.quat_xyzw[i]
    return {
        "timestamp": float(traj.t[i]),
        "frame": int(i),
        "agent_type": traj.agent_type,
        "position": _xyz(traj.position[i]),
        "orientation": {"x": float(q[0]), "y": float(q[1]), "z": float(q[2]), "w": float(q[3])},
        "velocity": {"linear": _xyz(traj.lin_vel[i]), "angular": _xyz(traj.ang_vel[i])},
        "ground_height": float(ground_height),
    }


NPZ_COMPRESSLEVEL = 3  # deflate level: half the time of numpy's savez_compressed (level 6) for ~2x larger files


def npz_bytes(arrays: dict[str, np.ndarray], compresslevel: int = NPZ_COMPRESSLEVEL) -> bytes:
    """A standard compressed .npz (np.load reads it) at the given deflate level, with fixed timestamps.

    Each member is compressed in one `writestr` call with an explicit level: streaming through
    `ZipFile.open(ZipInfo, "w")` ignores the archive's compresslevel (zlib's default 6 is used) and costs
    twice the time in chunked writes.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, value in arrays.items():
            value = np.ascontiguousarray(value)
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(value))
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, header.getvalue() + value.tobytes(), compresslevel=compresslevel)
    return buf.getvalue()


def write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_frame(session_dir: Path, i: int, traj: Trajectory, data: FrameData) -> None:
    """Write frame i's files into a (temporary) session folder."""
    arrays = {"occupancy": data.occupancy.astype(np.uint8, copy=False), "instances": data.instances.astype(np.int32, copy=False)}
    if data.mask_lidar is not None:
        arrays["mask_lidar"] = data.mask_lidar.astype(bool, copy=False)
    if data.mask_camera is not None:
        arrays["mask_camera"] = data.mask_camera.astype(bool, copy=False)
    layout.occupancy_path(session_dir, i).write_bytes(npz_bytes(arrays))
    write_json(layout.pose_path(session_dir, i), pose_record(traj, i, data.ground_height))
    if data.lidar is not None:
        np.save(layout.lidar_path(session_dir, i), data.lidar.astype(np.float32, copy=False))
    if data.image_jpeg is not None:
        layout.image_path(session_dir, i).write_bytes(data.image_jpeg)
    if data.annotations is not None:
        write_json(layout.annotation_path(session_dir, i), {"frame": int(i), "timestamp": float(traj.t[i]),
                                                              "objects": data.annotations})


def make_session_tmp(root: Path, name: str, sensors: bool = True) -> Path:
    """A fresh temporary folder for a session (any leftover of a crashed run is removed first)."""
    tmp = root / f"{layout.TMP_PREFIX}{name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    for sub in layout.SUBDIRS + (layout.SENSOR_SUBDIRS if sensors else ()):
        (tmp / sub).mkdir(parents=True)
    return tmp


def finish_session(tmp: Path, final: Path, meta: dict) -> None:
    """Write meta.json last, then rename the temporary folder to its final name (atomic on one filesystem)."""
    write_json(tmp / "meta.json", meta)
    if final.exists():
        raise FileExistsError(f"{final} already exists; refusing to overwrite a finished session")
    os.replace(tmp, final)

