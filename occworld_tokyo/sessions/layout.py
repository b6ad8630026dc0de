"""Names and paths of the session folder layout (the guide's "Data Format").

    <root>/drone_YYYYMMDD_HHMMSS[_k]/
        meta.json
        occupancy/NNNNNN_occupancy.npz   occupancy uint8 (200,200,121), instances int32, mask_lidar, mask_camera
        poses/NNNNNN.json
        lidar/NNNNNN_LIDAR.npy           float32 (N, 4) x, y, z, intensity (ego frame)
        images/NNNNNN_CAM_FRONT.jpg      900 x 1600 x 3
        annotations/NNNNNN.json          moving agents' boxes (id, class, centre, size, yaw, velocity; ego frame)
A session folder is complete when it has a meta.json: sessions are written under a temporary name
(`.tmp_<name>`) and renamed at the end, so a half-written session never carries its final name.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from pathlib import Path

from occworld_tokyo.errors import UserError
from occworld_tokyo.locks import LOCK_FILES


class GenerationError(UserError):
    """The generation cannot start or go on; the message says why and what to do (exit 2, one line)."""


AGENT_TYPES = ("drone", "rover")
SESSION_RE = re.compile(r"^(drone|rover)_(\d{8})_(\d{6})(?:_(\d+))?$")
TMP_PREFIX = ".tmp_"
SUBDIRS = ("occupancy", "poses", "annotations")
SENSOR_SUBDIRS = ("lidar", "images")


def occupancy_path(session: Path, frame: int) -> Path:
    return session / "occupancy" / f"{frame:06d}_occupancy.npz"


def pose_path(session: Path, frame: int) -> Path:
    return session / "poses" / f"{frame:06d}.json"


def lidar_path(session: Path, frame: int) -> Path:
    return session / "lidar" / f"{frame:06d}_LIDAR.npy"


def image_path(session: Path, frame: int, camera: str = "CAM_FRONT") -> Path:
    return session / "images" / f"{frame:06d}_{camera}.jpg"


def annotation_path(session: Path, frame: int) -> Path:
    return session / "annotations" / f"{frame:06d}.json"


def session_name(agent_type: str, start: datetime, suffix: int | None = None) -> str:
    name = f"{agent_type}_{start:%Y%m%d_%H%M%S}"
    return name if suffix is None else f"{name}_{suffix}"


def planned_session_names(agents: list[str], start: datetime, session_seconds: float) -> list[str]:
    """Deterministic names: session i starts at start + ceil(i * session length) s (a synthetic recording clock,
    so consecutive sessions never overlap)."""
    names: list[str] = []
    for i, agent in enumerate(agents):
        name = session_name(agent, start + timedelta(seconds=math.ceil(i * session_seconds)))
        k = 1
        base = name
        while name in names:
            name = f"{base}_{k}"
            k += 1
        names.append(name)
    return names


def is_session_dir(path: Path) -> bool:
    return path.is_dir() and bool(SESSION_RE.match(path.name)) and (path / "meta.json").is_file()


def find_sessions(root: Path) -> list[Path]:
    """Complete session folders under root, sorted by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if is_session_dir(p))


def foreign_entries(root: Path) -> list[str]:
    """Entries of an output folder that this generator did not write (sessions and their temporaries)."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for p in sorted(root.iterdir()):
        if p.name.startswith(TMP_PREFIX) or p.name in LOCK_FILES:  # temporaries and the runs' lock files
            continue
        if p.is_dir() and SESSION_RE.match(p.name):
            continue
        out.append(p.name)
    return out
