"""Our 14 storage labels (occworld_tokyo.labels) -> Occ3D-nuScenes' 18 classes (0 others .. 16 vegetation, 17 free),
and -> UniOcc's own 11 (0 other .. 9 building, 10 free; below).

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

UniOcc's own table (in its code, not its README: uniocc_viz.py COLOR_MAP and FREE_LABEL, uniocc_eval.py
free_label=10, uniocc_flow_gen.py objects [1, 2, 3, 4] / background [0, 5..9]; REFERENCE s10):
0 other, 1 car, 2 bicycle, 3 motorcycle, 4 pedestrian, 5 traffic_cone, 6 vegetation, 7 road, 8 terrain,
9 building, 10 free. Ours -> UniOcc:

| ours | UniOcc | why |
|---|---|---|
| 0 free | 10 free | |
| 1 building | 9 building | |
| 2 road | 7 road | |
| 3 bridge | 9 building | the structure (as Occ3D's manmade) |
| 4 railway | 0 other | no flat-other class; 0 is UniOcc's static background |
| 5 vegetation | 6 vegetation | |
| 6 terrain | 8 terrain | |
| 7 water | 0 other | no water or flat-other class |
| 8 city_furniture | 9 building | UniOcc's one man-made class (Occ3D puts poles and signs in manmade) |
| 9 other | 0 other | |
| 10 sidewalk | 7 road | the paved ground surface; UniOcc has no sidewalk class |
| 11 vehicle | 1 car | every kind (car, van, bus, truck): UniOcc has one vehicle class; the annotation's
  `category_name` keeps the kind |
| 12 pedestrian | 4 pedestrian | |
| 13 drone | 0 other | no flying class: UniOcc's flow generator treats 0 as static background |
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

UNIOCC_CLASSES: tuple[str, ...] = ("other", "car", "bicycle", "motorcycle", "pedestrian", "traffic_cone",
                                   "vegetation", "road", "terrain", "building", "free")
UNIOCC_FREE = 10
UNIOCC_OBJECTS = (1, 2, 3, 4)  # what UniOcc's flow generator moves with the annotated boxes
_UNIOCC_BY_LABEL = {L.FREE: UNIOCC_FREE, L.BUILDING: 9, L.ROAD: 7, L.BRIDGE: 9, L.RAILWAY: 0, L.VEGETATION: 6,
                    L.TERRAIN: 8, L.WATER: 0, L.CITY_FURNITURE: 9, L.OTHER: 0, L.SIDEWALK: 7, L.VEHICLE: 1,
                    L.PEDESTRIAN: 4, L.DRONE: 0}
LABEL_TO_UNIOCC = np.array([_UNIOCC_BY_LABEL[label.id] for label in L.LABELS], dtype=np.uint8)


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


def to_uniocc(occupancy: np.ndarray) -> np.ndarray:
    """(X, Y, Z) storage labels -> UniOcc uint8 ids (10 = free). Every vehicle kind is UniOcc's car (1)."""
    occ = np.asarray(occupancy)
    if occ.size and int(occ.max()) >= len(LABEL_TO_UNIOCC):
        raise ValueError(f"label id {int(occ.max())} is not in the label table (0..{len(LABEL_TO_UNIOCC) - 1})")
    return LABEL_TO_UNIOCC[occ]


def uniocc_category(obj: dict) -> int:
    """UniOcc category id of an annotated agent (its storage `label`): 1 car (any vehicle kind), 4 pedestrian,
    0 other (drones)."""
    return int(LABEL_TO_UNIOCC[int(obj.get("label", L.OTHER))])
