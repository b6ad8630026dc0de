"""Hand-built CityMesh pieces (boxes, horizontal quads, height-field TINs) for tests and benchmarks.

Their voxels can be computed by hand, which is what the voxel-world tests need; the benchmark uses
them for a synthetic 1 km city block grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..citymodel.mesh import CityMesh, Fill


def box_triangles(lo: tuple[float, float, float], hi: tuple[float, float, float]) -> np.ndarray:
    """(12, 3, 3) closed axis-aligned box, outward-facing triangles."""
    x0, y0, z0 = lo
    x1, y1, z1 = hi
    v = np.array([[x0, y0, z0], [x1, y0, z0], [x1, y1, z0], [x0, y1, z0],
                  [x0, y0, z1], [x1, y0, z1], [x1, y1, z1], [x0, y1, z1]], dtype=np.float64)
    faces = [(0, 2, 1), (0, 3, 2), (4, 5, 6), (4, 6, 7), (0, 1, 5), (0, 5, 4),
             (1, 2, 6), (1, 6, 5), (2, 3, 7), (2, 7, 6), (3, 0, 4), (3, 4, 7)]
    return v[np.array(faces)]


def quad_triangles(x: tuple[float, float], y: tuple[float, float], z: float) -> np.ndarray:
    """(2, 3, 3) horizontal rectangle [x0, x1] x [y0, y1] at height z (upward facing)."""
    (x0, x1), (y0, y1) = x, y
    v = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], dtype=np.float64)
    return v[np.array([(0, 1, 2), (0, 2, 3)])]


def heightfield_triangles(xs: np.ndarray, ys: np.ndarray, zfun) -> np.ndarray:
    """(2 (nx-1)(ny-1), 3, 3) TIN over the grid xs x ys with heights zfun(x, y)."""
    X, Y = np.meshgrid(np.asarray(xs, float), np.asarray(ys, float), indexing="ij")
    P = np.stack([X, Y, zfun(X, Y)], axis=-1)
    a, b, c, d = P[:-1, :-1], P[1:, :-1], P[1:, 1:], P[:-1, 1:]
    t1 = np.stack([a, b, c], axis=-2).reshape(-1, 3, 3)
    t2 = np.stack([a, c, d], axis=-2).reshape(-1, 3, 3)
    return np.concatenate([t1, t2])


@dataclass
class MeshBuilder:
    """Accumulates objects (triangles, label, fill) into one CityMesh with instance ids 1, 2, ..."""

    def __post_init__(self) -> None:
        self._tris: list[np.ndarray] = []
        self._labels: list[int] = []
        self._fills: list[int] = []
        self._instances: list[int] = []

    def add(self, triangles: np.ndarray, label: int, fill: Fill, instance: int | None = None) -> int:
        """Add one object; returns its object index."""
        self._tris.append(np.asarray(triangles, dtype=np.float64).reshape(-1, 3, 3))
        self._labels.append(int(label))
        self._fills.append(int(fill))
        self._instances.append(int(instance) if instance is not None else len(self._instances) + 1)
        return len(self._tris) - 1

    def build(self) -> CityMesh:
        n = len(self._tris)
        return CityMesh(
            triangles=np.concatenate(self._tris) if n else np.zeros((0, 3, 3)),
            tri_object=np.concatenate([np.full(len(t), i) for i, t in enumerate(self._tris)]) if n else np.zeros(0),
            object_label=np.array(self._labels), object_instance=np.array(self._instances),
            object_fill=np.array(self._fills), object_gml_id=[f"obj{i}" for i in range(n)],
        )


def box_grid_city(size_m: float = 1000.0, block: float = 50.0, street: float = 14.0, ground: float = 0.0,
                  seed: int = 0) -> CityMesh:
    """Synthetic city: square blocks of `block` m separated by streets, 4 buildings per block with random
    heights (5-200 m, mostly low), road quads on the streets, flat ground (no terrain objects)."""
    from .. import labels as L

    rng = np.random.default_rng(seed)
    mb = MeshBuilder()
    pitch = block + street
    n = int(size_m // pitch)
    half = (block - 2.0) / 2
    for a in range(n):
        for b in range(n):
            bx, by = a * pitch + street / 2, b * pitch + street / 2
            for qx in range(2):
                for qy in range(2):
                    x = bx + 1.0 + qx * (half + 1.0)
                    y = by + 1.0 + qy * (half + 1.0)
                    h = float(min(200.0, 5.0 + rng.exponential(15.0)))
                    mb.add(box_triangles((x, y, ground), (x + half - 1.0, y + half - 1.0, ground + h)),
                           L.BUILDING, Fill.SOLID)
    span = (-street / 2, n * pitch + street / 2)
    for a in range(n + 1):
        s = (a * pitch - street / 2, a * pitch + street / 2)
        mb.add(quad_triangles(s, span, ground), L.ROAD, Fill.SURFACE)
        mb.add(quad_triangles(span, s, ground), L.ROAD, Fill.SURFACE)
    return mb.build()
