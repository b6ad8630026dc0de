"""PolygonSoup: polygons with holes in one flat coordinate array, built ring by ring by the readers.

Layout: `coords` (N, 3) float64; ring r is coords[ring_offsets[r]:ring_offsets[r + 1]] (no repeated
closing vertex); polygon p owns rings poly_ring_offsets[p]:poly_ring_offsets[p + 1], the first being
the exterior; poly_object[p] is the (per file) object index the polygon belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def clean_ring(ring: np.ndarray) -> np.ndarray | None:
    """Drop the repeated closing vertex and consecutive duplicates; None if fewer than 3 vertices remain."""
    if len(ring) < 3:
        return None
    keep = np.ones(len(ring), dtype=bool)
    keep[1:] = np.any(ring[1:] != ring[:-1], axis=1)
    ring = ring[keep]
    while len(ring) > 1 and np.array_equal(ring[0], ring[-1]):
        ring = ring[:-1]
    return ring if len(ring) >= 3 else None


@dataclass
class PolygonSoup:
    coords: np.ndarray  # (N, 3) float64
    ring_offsets: np.ndarray  # (R + 1,) int64
    poly_ring_offsets: np.ndarray  # (P + 1,) int64
    poly_object: np.ndarray  # (P,) int64

    @property
    def n_polygons(self) -> int:
        return len(self.poly_object)

    def with_coords(self, coords: np.ndarray) -> "PolygonSoup":
        """The same polygons with other coordinates (e.g. projected)."""
        return PolygonSoup(np.asarray(coords, dtype=np.float64), self.ring_offsets, self.poly_ring_offsets,
                           self.poly_object)


class PolygonSoupBuilder:
    """Accumulates polygons (lists of rings) for objects, then freezes them into a PolygonSoup."""

    def __init__(self) -> None:
        self._rings: list[np.ndarray] = []
        self._ring_counts: list[int] = []
        self._poly_object: list[int] = []

    @property
    def n_polygons(self) -> int:
        return len(self._poly_object)

    def add_polygon(self, obj: int, rings: list[np.ndarray]) -> bool:
        """Add one polygon (exterior first, then holes; raw rings, cleaned here). False if degenerate."""
        if not rings:
            return False
        exterior = clean_ring(rings[0])
        if exterior is None:
            return False
        kept = [exterior]
        for hole in rings[1:]:
            hole = clean_ring(hole)
            if hole is not None:
                kept.append(hole)
        self._rings.extend(kept)
        self._ring_counts.append(len(kept))
        self._poly_object.append(obj)
        return True

    def add_triangles(self, obj: int, tris: np.ndarray) -> None:
        """Add many triangles (T, 3, 3) at once (no cleaning: caller guarantees 3 distinct vertices)."""
        for t in tris:
            self._rings.append(t)
            self._ring_counts.append(1)
            self._poly_object.append(obj)

    def build(self) -> PolygonSoup:
        if self._rings:
            coords = np.concatenate(self._rings).astype(np.float64, copy=False)
            if coords.shape[1] == 2:
                coords = np.column_stack([coords, np.zeros(len(coords))])
        else:
            coords = np.zeros((0, 3), dtype=np.float64)
        ring_offsets = np.zeros(len(self._rings) + 1, dtype=np.int64)
        np.cumsum([len(r) for r in self._rings], out=ring_offsets[1:])
        poly_ring_offsets = np.zeros(len(self._ring_counts) + 1, dtype=np.int64)
        np.cumsum(self._ring_counts, out=poly_ring_offsets[1:])
        return PolygonSoup(coords, ring_offsets, poly_ring_offsets, np.asarray(self._poly_object, dtype=np.int64))


def extrude_footprint(rings: list[np.ndarray], bottom: float, top: float) -> list[list[np.ndarray]]:
    """A closed prism from a footprint polygon (rings of (x, y, ...) points): bottom, top and wall polygons."""
    polys: list[list[np.ndarray]] = []
    flat = [r[:, :2] for r in (clean_ring(r) for r in rings) if r is not None]
    if not flat:
        return polys

    def at(r: np.ndarray, z: float) -> np.ndarray:
        return np.column_stack([r, np.full(len(r), z)])

    polys.append([at(r[::-1], bottom) for r in flat])
    polys.append([at(r, top) for r in flat])
    for r in flat:
        nxt = np.roll(r, -1, axis=0)
        for a, b in zip(r, nxt):
            polys.append([np.array([[a[0], a[1], bottom], [b[0], b[1], bottom], [b[0], b[1], top], [a[0], a[1], top]])])
    return polys
