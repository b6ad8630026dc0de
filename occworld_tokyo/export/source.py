"""Reading one finished session for an export (through the project's session readers; nothing is modified)."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from occworld_tokyo.dataset.poses import ego_frames, pose_arrays
from occworld_tokyo.dataset.sessions import DataError, SessionInfo, read_occupancy, read_pose, read_session
from occworld_tokyo.grid import EgoFrame
from occworld_tokyo.sessions import layout


@dataclass
class SourceSession:
    info: SessionInfo
    meta: dict
    poses: dict[str, np.ndarray]  # pose_arrays: position (T, 3), quat (T, 4) xyzw, lin_vel, ang_vel, ground
    frames: list[EgoFrame] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.info.path

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def n(self) -> int:
        return self.info.n_frames

    def occupancy(self, i: int) -> dict[str, np.ndarray]:
        """Frame i's arrays (occupancy, instances and, with sensors, the masks); a DataError naming a bad file."""
        path = layout.occupancy_path(self.path, i)
        try:
            arrays = read_occupancy(self.path, i, ("occupancy", "instances", "mask_lidar", "mask_camera"))
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"{path}: unreadable ({exc}); regenerate this session") from exc
        shape = self.info.grid.shape
        for key in ("occupancy", "instances"):
            if key not in arrays or arrays[key].shape != shape:
                raise DataError(f"{path}: '{key}' missing or not of the session's grid shape {shape}; "
                                "regenerate this session")
        return arrays

    def objects(self, i: int) -> list[dict]:
        """The moving agents' boxes of frame i (ego frame); [] for sessions written without annotations."""
        path = layout.annotation_path(self.path, i)
        if not path.is_file():
            return []
        try:
            return list(json.loads(path.read_text())["objects"])
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{path}: unreadable annotations ({exc}); regenerate this session") from exc

    def lidar(self, i: int) -> np.ndarray | None:
        path = layout.lidar_path(self.path, i)
        return np.load(path) if path.is_file() else None

    def image_path(self, i: int) -> Path | None:
        path = layout.image_path(self.path, i)
        return path if path.is_file() else None

    def height_above_ground(self) -> np.ndarray:
        """(T,) the agent's height above its ego frame's z = 0 (m)."""
        return self.poses["position"][:, 2] - self.poses["ground"]


def open_session(path: Path) -> SourceSession:
    info = read_session(path)
    meta = json.loads((Path(path) / "meta.json").read_text())
    poses = pose_arrays([read_pose(info.path, i) for i in range(info.n_frames)])
    return SourceSession(info, meta, poses, ego_frames(poses))
