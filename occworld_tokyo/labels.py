"""The one semantic label table of the project.

Storage ids are what session files hold (`occupancy/*.npz['occupancy']`, uint8). 0 is free space.
Ids 11-13 are reserved for dynamic agents (moving vehicles, pedestrians, other drones).
Training maps them one to one to model classes; `FREE` is the model's free class index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Label:
    id: int
    name: str
    color: tuple[int, int, int]  # RGB used by the camera renderer and the report figures
    dynamic: bool = False


LABELS: tuple[Label, ...] = (
    Label(0, "free", (0, 0, 0)),
    Label(1, "building", (220, 120, 80)),
    Label(2, "road", (128, 64, 128)),
    Label(3, "bridge", (150, 100, 100)),
    Label(4, "railway", (230, 150, 140)),
    Label(5, "vegetation", (107, 142, 35)),
    Label(6, "terrain", (152, 251, 152)),
    Label(7, "water", (70, 130, 180)),
    Label(8, "city_furniture", (250, 170, 30)),
    Label(9, "other", (180, 180, 180)),
    Label(10, "sidewalk", (244, 35, 232)),
    Label(11, "vehicle", (0, 0, 142), dynamic=True),
    Label(12, "pedestrian", (220, 20, 60), dynamic=True),
    Label(13, "drone", (255, 0, 255), dynamic=True),
)

FREE = 0
BUILDING, ROAD, BRIDGE, RAILWAY, VEGETATION, TERRAIN, WATER, CITY_FURNITURE, OTHER, SIDEWALK = range(1, 11)
VEHICLE, PEDESTRIAN, DRONE = 11, 12, 13
NUM_CLASSES = len(LABELS)  # includes free
LABEL_NAMES: tuple[str, ...] = tuple(label.name for label in LABELS)
DYNAMIC_IDS: tuple[int, ...] = tuple(label.id for label in LABELS if label.dynamic)

# PLATEAU feature type (the `<type>` in `udx/<type>/` and in file names) -> storage id.
PLATEAU_TYPE_TO_LABEL: dict[str, int] = {
    "bldg": BUILDING,
    "tran": ROAD,
    "brid": BRIDGE,
    "rwy": RAILWAY,
    "trk": SIDEWALK,
    "veg": VEGETATION,
    "dem": TERRAIN,
    "wtr": WATER,
    "frn": CITY_FURNITURE,
}


def palette() -> np.ndarray:
    """(NUM_CLASSES, 3) uint8 RGB colours indexed by storage id."""
    return np.array([label.color for label in LABELS], dtype=np.uint8)


def label_table() -> list[dict]:
    """The table as JSON-ready rows (written into every session's meta.json)."""
    return [{"id": l.id, "name": l.name, "color": list(l.color), "dynamic": l.dynamic} for l in LABELS]
