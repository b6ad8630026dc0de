"""Our 14 storage labels (occworld_tokyo.labels) -> Occ3D-nuScenes' 18 classes (0 others .. 16 vegetation, 17 free).

| ours | Occ3D | why |
|---|---|---|
| 0 free | 17 free | |
| 1 building | 15 manmade | nuScenes static.manmade: buildings, walls, poles, signs |
| 2 road | 11 driveable_surface | |
| 3 bridge | 15 manmade | the structure; its deck is not told apart in our labels |
| 4 railway | 12 other_flat | nuScenes flat.other includes rail tracks |
| 5 vegetation | 16 vegetation | |
| 6 terrain | 14 terrain | |
| 7 water | 12 other_flat | nuScenes flat.other includes larger bodies of water |
| 8 city_furniture | 15 manmade | |
| 9 other | 0 others | |
| 10 sidewalk | 13 sidewalk | |
| 11 vehicle | 4 car / 3 bus / 10 truck | by the annotation's `kind`: car and van -> car, bus -> bus, truck -> truck |
| 12 pedestrian | 7 pedestrian | |
| 13 drone | 0 others | Occ3D has no flying class |

Vehicle voxels are split per instance: `instances` names the agent, the frame's annotation gives its kind.
"""

from __future__ import annotations

import numpy as np

from occworld_tokyo import labels as L

OCC3D_CLASSES: tuple[str, ...] = (
    "others", "barrier", "bicycle", "bus", "car", "construction_vehicle", "motorcycle", "pedestrian",
    "traffic_cone", "trailer", "truck", "driveable_surface", "other_flat", "sidewalk", "terrain", "manmade",
    "vegetation", "free")
OCC3D_FREE = 17
CAR, BUS, TRUCK = 4, 3, 10

_BY_LABEL = {L.FREE: OCC3D_FREE, L.BUILDING: 15, L.ROAD: 11, L.BRIDGE: 15, L.RAILWAY: 12, L.VEGETATION: 16,
             L.TERRAIN: 14, L.WATER: 12, L.CITY_FURNITURE: 15, L.OTHER: 0, L.SIDEWALK: 13, L.VEHICLE: CAR,
             L.PEDESTRIAN: 7, L.DRONE: 0}
LABEL_TO_OCC3D = np.array([_BY_LABEL[label.id] for label in L.LABELS], dtype=np.uint8)
VEHICLE_KIND_TO_OCC3D: dict[str, int] = {"car": CAR, "van": CAR, "bus": BUS, "truck": TRUCK}
# nuScenes category names for the info pickles' gt_names (what the released evaluation reads)
KIND_TO_NUSCENES_NAME: dict[str, str] = {"car": "car", "van": "car", "bus": "bus", "truck": "truck",
                                         "pedestrian": "pedestrian"}


def to_occ3d(occupancy: np.ndarray, instances: np.ndarray, objects: list[dict]) -> tuple[np.ndarray, list[str]]:
    """(X, Y, Z) storage labels + instance ids + the frame's annotation objects -> (Occ3D uint8 semantics, problems).

    Problems name vehicle instances without an annotation or with an unknown kind (mapped to car)."""
    occ = np.asarray(occupancy)
    if occ.size and int(occ.max()) >= len(LABEL_TO_OCC3D):
        raise ValueError(f"label id {int(occ.max())} is not in the label table (0..{len(LABEL_TO_OCC3D) - 1})")
    out = LABEL_TO_OCC3D[occ]
    problems: list[str] = []
    vehicle = occ == L.VEHICLE
    if vehicle.any():
        kinds = {int(o["id"]): str(o.get("kind", "")) for o in objects if int(o.get("label", -1)) == L.VEHICLE}
        for inst in np.unique(instances[vehicle]).tolist():
            kind = kinds.get(int(inst))
            cls = VEHICLE_KIND_TO_OCC3D.get(kind or "")
            if cls is None:
                problems.append(f"vehicle instance {inst}: {'no annotation' if kind is None else 'kind ' + repr(kind)}"
                                " -> car")
                continue
            if cls != CAR:
                out[vehicle & (instances == inst)] = cls
    return out, problems
