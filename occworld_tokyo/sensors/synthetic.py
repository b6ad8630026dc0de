"""Hand-built CityMesh scenes (a ground quad plus axis-aligned boxes) with answers one can compute by hand.

Used by the sensor tests and, before a real city is at hand, by `benchmarks/bench_sensors.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from occworld_tokyo import labels as L
from occworld_tokyo.citymodel.mesh import CityMesh, Fill

# the 12 triangles of a unit cube's faces (outward winding), as corner indices of `_corners`
_BOX_FACES = np.array([
    (0, 2, 1), (0, 3, 2),  # bottom z = lo
    (4, 5, 6), (4, 6, 7),  # top z = hi
    (0, 1, 5), (0, 5, 4),  # y = lo
    (2, 3, 7), (2, 7, 6),  # y = hi
    (1, 2, 6), (1, 6, 5),  # x = hi
    (3, 0, 4), (3, 4, 7),  # x = lo
])


@dataclass(frozen=True)
class Box:
    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    label: int = L.BUILDING


def box_triangles(lo: tuple[float, float, float], hi: tuple[float, float, float]) -> np.ndarray:
    """(12, 3, 3) float32 triangles of an axis-aligned box."""
    x0, y0, z0 = lo
    x1, y1, z1 = hi
    corners = np.array([[x0, y0, z0], [x1, y0, z0], [x1, y1, z0], [x0, y1, z0],
                        [x0, y0, z1], [x1, y0, z1], [x1, y1, z1], [x0, y1, z1]], dtype=np.float32)
    return corners[_BOX_FACES]


def quad_triangles(x0: float, y0: float, x1: float, y1: float, z: float) -> np.ndarray:
    """(2, 3, 3) float32 triangles of a horizontal rectangle at height z (normal up)."""
    return np.array([[[x0, y0, z], [x1, y0, z], [x1, y1, z]], [[x0, y0, z], [x1, y1, z], [x0, y1, z]]],
                    dtype=np.float32)


def box_city(boxes: list[Box], ground_half_size: float | None = 500.0, ground_z: float = 0.0,
             ground_label: int = L.ROAD) -> CityMesh:
    """A CityMesh of the boxes (objects 0..B-1, instance ids 1..B) plus an optional ground quad (last object)."""
    tris, tri_obj, obj_label, obj_fill = [], [], [], []
    for b_index, b in enumerate(boxes):
        tris.append(box_triangles(b.lo, b.hi))
        tri_obj.append(np.full(12, b_index))
        obj_label.append(b.label)
        obj_fill.append(Fill.SOLID)
    if ground_half_size is not None:
        g = ground_half_size
        tris.append(quad_triangles(-g, -g, g, g, ground_z))
        tri_obj.append(np.full(2, len(boxes)))
        obj_label.append(ground_label)
        obj_fill.append(Fill.SURFACE)
    n_obj = len(obj_label)
    return CityMesh(
        triangles=np.concatenate(tris),
        tri_object=np.concatenate(tri_obj),
        object_label=np.array(obj_label),
        object_instance=np.arange(1, n_obj + 1),
        object_fill=np.array(obj_fill),
        object_gml_id=[f"synthetic_{i}" for i in range(n_obj)],
    )


def random_box_city(n_boxes: int = 3000, half_size: float = 500.0, seed: int = 0) -> CityMesh:
    """A benchmark city: n random buildings (footprints 8-30 m, heights 5-120 m) on a ground plane."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-half_size, half_size - 30.0, size=(n_boxes, 2))
    size = rng.uniform(8.0, 30.0, size=(n_boxes, 2))
    height = np.minimum(rng.lognormal(np.log(18.0), 0.7, size=n_boxes), 200.0)
    boxes = [Box((x, y, 0.0), (x + sx, y + sy, h)) for (x, y), (sx, sy), h in zip(xy, size, height)]
    return box_city(boxes, ground_half_size=half_size)
