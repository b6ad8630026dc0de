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


def clean_rings(coords: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised clean_ring over many concatenated rings: (kept vertex mask, new ring lengths)."""
    n = len(coords)
    starts = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64)
    keep = np.ones(n, dtype=bool)
    if n > 1:
        keep[1:] = np.any(coords[1:] != coords[:-1], axis=1)
    keep[starts] = True
    # the repeated closing vertex: the last kept vertex of a ring equal to its first vertex
    idx = np.where(keep, np.arange(n), -1)
    last = np.maximum.reduceat(idx, starts)
    closing = (last > starts) & np.all(coords[np.maximum(last, 0)] == coords[starts], axis=1)
    keep[last[closing]] = False
    new_lengths = np.add.reduceat(keep.astype(np.int64), starts)
    return keep, new_lengths


class PolygonSoupBuilder:
    """Accumulates polygons (lists of raw rings) for objects, then cleans and freezes them into a PolygonSoup.

    Cleaning (repeated closing vertex, consecutive duplicates, rings with < 3 vertices, polygons whose
    exterior is degenerate) happens once, vectorised, in build().
    """

    def __init__(self) -> None:
        # chunks of (coords (N, 3), ring lengths (R,), rings per polygon (P,), object per polygon (P,))
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._n_polygons = 0
        self.n_dropped = 0  # polygons dropped as degenerate in build()
        self.dropped_objects = np.zeros(0, dtype=np.int64)  # the object of each polygon dropped in build()

    @property
    def n_polygons(self) -> int:
        return self._n_polygons

    def add_polygon(self, obj: int, rings: list[np.ndarray]) -> bool:
        """Add one polygon (exterior first, then holes; (N, 3) arrays). False if obviously degenerate."""
        if not rings or len(rings[0]) < 3:
            return False
        rings = [r for r in rings if len(r) >= 3]
        coords = rings[0] if len(rings) == 1 else np.concatenate(rings)
        self._chunks.append((coords, np.array([len(r) for r in rings], dtype=np.int64),
                             np.array([len(rings)], dtype=np.int64), np.array([obj], dtype=np.int64)))
        self._n_polygons += 1
        return True

    def add_simple_polygons(self, obj: int, coords: np.ndarray, lengths: np.ndarray) -> int:
        """Add many hole-free polygons at once: coords (N, 3) holds their rings back to back."""
        ok = lengths >= 3
        if not ok.all():
            vert_ok = np.repeat(ok, lengths)
            coords, lengths = coords[vert_ok], lengths[ok]
        n = len(lengths)
        if n:
            self._chunks.append((coords, lengths.astype(np.int64), np.ones(n, dtype=np.int64),
                                 np.full(n, obj, dtype=np.int64)))
            self._n_polygons += n
        return n

    def build(self) -> PolygonSoup:
        if not self._chunks:
            return PolygonSoup(np.zeros((0, 3)), np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(0, np.int64))
        coords = np.concatenate([c[0] for c in self._chunks]).astype(np.float64, copy=False)
        if coords.shape[1] == 2:
            coords = np.column_stack([coords, np.zeros(len(coords))])
        lengths = np.concatenate([c[1] for c in self._chunks])
        ring_counts = np.concatenate([c[2] for c in self._chunks])
        all_objects = np.concatenate([c[3] for c in self._chunks])
        keep, new_lengths = clean_rings(coords, lengths)
        poly_first = np.r_[0, np.cumsum(ring_counts)[:-1]]
        ring_poly = np.repeat(np.arange(len(ring_counts)), ring_counts)
        poly_ok = new_lengths[poly_first] >= 3
        ring_ok = (new_lengths >= 3) & poly_ok[ring_poly]
        self.n_dropped = int((~poly_ok).sum())
        self.dropped_objects = all_objects[~poly_ok]
        vert_ring = np.repeat(np.arange(len(lengths)), lengths)
        coords = coords[keep & ring_ok[vert_ring]]
        kept_lengths = new_lengths[ring_ok]
        ring_offsets = np.zeros(len(kept_lengths) + 1, dtype=np.int64)
        np.cumsum(kept_lengths, out=ring_offsets[1:])
        counts = np.bincount(ring_poly[ring_ok], minlength=len(ring_counts))[poly_ok]
        poly_ring_offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=poly_ring_offsets[1:])
        poly_object = all_objects[poly_ok]
        return PolygonSoup(coords, ring_offsets, poly_ring_offsets, poly_object)


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
