"""Triangle -> column-centre sampling: the one geometric kernel of the voxel world.

The voxel world is a regular lattice of vertical columns (x, y cells of `dx` x `dy` metres). Every
non-vertical triangle is rasterised over the column *centres* it covers: for each covered centre we get
the height z of the triangle's plane there. Vertical walls cover no centre and produce nothing, which is
what the solid fill wants (the roof and the floor of a building bound its interior; the walls do not).

Everything is vectorised in numpy and processed in chunks of at most `chunk` candidate (triangle, centre)
pairs so that memory stays bounded for a 1 km tile (millions of samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

# A centre that lies on an edge (within this many barycentric units) counts as covered by that triangle.
# Shared edges are then covered by both neighbours, harmless for min/max reductions, and tiny gaps in
# LOD2 meshes (float noise between adjacent polygons) do not drop centres.
_INSIDE_EPS = 1e-6


@dataclass(frozen=True)
class ColumnLattice:
    """The x/y lattice of the voxel world: column (i, j) covers [x0 + i dx, x0 + (i+1) dx) x [y0 + j dy, ...)."""

    x0: float
    y0: float
    dx: float
    dy: float
    nx: int
    ny: int

    @property
    def n_columns(self) -> int:
        return self.nx * self.ny

    def centers_x(self) -> np.ndarray:
        return self.x0 + (np.arange(self.nx) + 0.5) * self.dx

    def centers_y(self) -> np.ndarray:
        return self.y0 + (np.arange(self.ny) + 0.5) * self.dy


def lattice_for_bounds(xmin: float, ymin: float, xmax: float, ymax: float, dx: float, dy: float,
                       margin: float = 0.0) -> ColumnLattice:
    """A column lattice covering [xmin - margin, xmax + margin] x [ymin - margin, ymax + margin].

    The corner is snapped to a multiple of the column size so that lattices of the same data agree.
    """
    x0 = float(np.floor((xmin - margin) / dx) * dx)
    y0 = float(np.floor((ymin - margin) / dy) * dy)
    nx = max(1, int(np.ceil((xmax + margin - x0) / dx - 1e-9)))
    ny = max(1, int(np.ceil((ymax + margin - y0) / dy - 1e-9)))
    return ColumnLattice(x0, y0, float(dx), float(dy), nx, ny)


@dataclass
class _TriangleSetup:
    """Per-triangle data in column-index units (centre of column i is at u = i)."""

    index: np.ndarray  # (M,) int64 triangle indices (into the caller's array) that cover >= 1 centre
    i_lo: np.ndarray
    j_lo: np.ndarray
    width: np.ndarray  # covered bounding-box size in columns along x
    count: np.ndarray  # width * height candidate centres
    coef: np.ndarray  # (M, 9) float64: u0 v0 a1 b1 a2 b2 gu gv c  (barycentrics and plane z = c + gu u + gv v)
    zlo: np.ndarray  # (M,) min vertex z (clamp for the plane)
    zhi: np.ndarray


def _setup(tri: np.ndarray, lat: ColumnLattice) -> _TriangleSetup:
    t = np.asarray(tri, dtype=np.float64)
    u = (t[:, :, 0] - lat.x0) / lat.dx - 0.5
    v = (t[:, :, 1] - lat.y0) / lat.dy - 0.5
    z = t[:, :, 2]
    i_lo = np.maximum(np.ceil(u.min(axis=1) - 1e-9), 0).astype(np.int64)
    i_hi = np.minimum(np.floor(u.max(axis=1) + 1e-9), lat.nx - 1).astype(np.int64)
    j_lo = np.maximum(np.ceil(v.min(axis=1) - 1e-9), 0).astype(np.int64)
    j_hi = np.minimum(np.floor(v.max(axis=1) + 1e-9), lat.ny - 1).astype(np.int64)
    du1, dv1 = u[:, 1] - u[:, 0], v[:, 1] - v[:, 0]
    du2, dv2 = u[:, 2] - u[:, 0], v[:, 2] - v[:, 0]
    area2 = du1 * dv2 - du2 * dv1
    keep = (i_hi >= i_lo) & (j_hi >= j_lo) & (np.abs(area2) > 1e-9)
    idx = np.nonzero(keep)[0]
    A = area2[idx]
    a1, b1 = dv2[idx] / A, -du2[idx] / A  # lambda1 = a1 (pu - u0) + b1 (pv - v0)
    a2, b2 = -dv1[idx] / A, du1[idx] / A  # lambda2 = a2 (pu - u0) + b2 (pv - v0)
    dz1, dz2 = z[idx, 1] - z[idx, 0], z[idx, 2] - z[idx, 0]
    gu, gv = dz1 * a1 + dz2 * a2, dz1 * b1 + dz2 * b2
    u0, v0 = u[idx, 0], v[idx, 0]
    c = z[idx, 0] - gu * u0 - gv * v0
    width = i_hi[idx] - i_lo[idx] + 1
    count = width * (j_hi[idx] - j_lo[idx] + 1)
    return _TriangleSetup(
        index=idx, i_lo=i_lo[idx], j_lo=j_lo[idx], width=width, count=count,
        coef=np.stack([u0, v0, a1, b1, a2, b2, gu, gv, c], axis=1),
        zlo=z[idx].min(axis=1), zhi=z[idx].max(axis=1),
    )


def _chunks(count: np.ndarray, chunk: int) -> list[tuple[int, int]]:
    """Split consecutive triangles into runs whose candidate count stays near `chunk`."""
    ends = np.cumsum(count)
    bounds, start, done = [], 0, 0
    while start < len(count):
        stop = int(np.searchsorted(ends, done + chunk, side="right"))
        stop = max(stop, start + 1)
        bounds.append((start, stop))
        done = int(ends[stop - 1])
        start = stop
    return bounds


def _sample_chunk(s: _TriangleSetup, a: int, b: int, lat: ColumnLattice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cnt = s.count[a:b]
    total = int(cnt.sum())
    local_t = np.repeat(np.arange(b - a), cnt)
    first = np.cumsum(cnt) - cnt
    l = np.arange(total, dtype=np.int64) - np.repeat(first, cnt)
    w = s.width[a:b][local_t]
    dj = l // w
    ci = s.i_lo[a:b][local_t] + (l - dj * w)
    cj = s.j_lo[a:b][local_t] + dj
    k = s.coef[a:b][local_t]
    pu = ci - k[:, 0]
    pv = cj - k[:, 1]
    l1 = k[:, 2] * pu + k[:, 3] * pv
    l2 = k[:, 4] * pu + k[:, 5] * pv
    inside = (l1 >= -_INSIDE_EPS) & (l2 >= -_INSIDE_EPS) & (l1 + l2 <= 1.0 + _INSIDE_EPS)
    lt = local_t[inside]
    zz = k[inside, 8] + k[inside, 6] * ci[inside] + k[inside, 7] * cj[inside]
    zz = np.clip(zz, s.zlo[a:b][lt], s.zhi[a:b][lt])
    col = ci[inside] * lat.ny + cj[inside]
    return s.index[a + lt], col, zz.astype(np.float32)


def sample_triangles(tri: np.ndarray, lat: ColumnLattice, chunk: int = 2_000_000) -> Iterator[
        tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (triangle index int64, flat column index i * ny + j int64, z float32) for every covered centre.

    `tri` is (T, 3, 3) world coordinates. A centre is covered when it lies inside the triangle's xy
    projection (edges inclusive). z is the triangle's plane at the centre, clamped to its vertex range.
    """
    if len(tri) == 0:
        return
    s = _setup(tri, lat)
    for a, b in _chunks(s.count, chunk):
        yield _sample_chunk(s, a, b, lat)


def count_candidates(tri: np.ndarray, lat: ColumnLattice) -> int:
    """Number of (triangle, centre) candidates the sampler will test (for progress bars and planning)."""
    return int(_setup(tri, lat).count.sum()) if len(tri) else 0
