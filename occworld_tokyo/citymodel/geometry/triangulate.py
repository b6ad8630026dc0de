"""Triangulation of planar 3D polygons with holes (PolygonSoup -> triangle soup).

Triangles and quads (the bulk of PLATEAU geometry) are split with vectorised numpy; every other polygon
is projected onto its own plane (an orthonormal basis from its Newell normal) and cut with earcut
(mapbox-earcut), which handles holes. Output triangles are wound like their polygon (their normal points
the same way as the polygon's Newell normal).
"""

from __future__ import annotations

import math

import mapbox_earcut
import numpy as np

from .polygons import PolygonSoup

_EPS_AREA = 1e-12


def ring_newell_normals(coords: np.ndarray, ring_offsets: np.ndarray, rings: np.ndarray) -> np.ndarray:
    """Newell normals (not normalised; length = 2 x area) of the selected rings, vectorised."""
    starts = ring_offsets[rings]
    ends = ring_offsets[rings + 1]
    lengths = ends - starts
    if not len(rings):
        return np.zeros((0, 3))
    idx = np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths) + np.arange(lengths.sum())
    nxt = idx + 1
    last = np.cumsum(lengths) - 1
    nxt[last] = starts
    p, q = coords[idx], coords[nxt]
    centre = np.repeat(np.add.reduceat(p, np.r_[0, np.cumsum(lengths)[:-1]]) / lengths[:, None], lengths, axis=0)
    p = p - centre
    q = q - centre
    terms = np.cross(p, q)
    return np.add.reduceat(terms, np.r_[0, np.cumsum(lengths)[:-1]])


def _orient(tris: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Flip triangles whose normal points against the given per-triangle polygon normal."""
    tn = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    flip = np.einsum("ij,ij->i", tn, normals) < 0
    if flip.any():
        tris[flip] = tris[flip][:, ::-1]
    return tris


def _plane_basis(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two orthonormal vectors spanning the plane with normal n (plain floats: faster than np.cross here)."""
    nx, ny, nz = (float(v) for v in n)
    s = math.sqrt(nx * nx + ny * ny + nz * nz)
    nx, ny, nz = nx / s, ny / s, nz / s
    if abs(nx) < 0.9:  # u = n x (1, 0, 0)
        ux, uy, uz = 0.0, nz, -ny
    else:  # u = n x (0, 1, 0)
        ux, uy, uz = -nz, 0.0, nx
    s = math.sqrt(ux * ux + uy * uy + uz * uz)
    ux, uy, uz = ux / s, uy / s, uz / s
    return np.array([ux, uy, uz]), np.array([ny * uz - nz * uy, nz * ux - nx * uz, nx * uy - ny * ux])


def _earcut_polygon(pts: np.ndarray, ring_ends: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Triangle vertex indices (K, 3) into pts for one polygon with holes."""
    u, v = _plane_basis(normal)
    centred = pts - pts.mean(axis=0)
    uv = np.column_stack([centred @ u, centred @ v])
    idx = mapbox_earcut.triangulate_float64(uv, ring_ends.astype(np.uint32))
    return np.asarray(idx, dtype=np.int64).reshape(-1, 3)


def triangulate(soup: PolygonSoup) -> tuple[np.ndarray, np.ndarray, int]:
    """(triangles (T, 3, 3) float64, tri_polygon (T,) int64, number of degenerate polygons dropped)."""
    c = soup.coords
    ro = soup.ring_offsets
    pro = soup.poly_ring_offsets
    n_poly = soup.n_polygons
    if n_poly == 0:
        return np.zeros((0, 3, 3)), np.zeros(0, dtype=np.int64), 0
    ext = pro[:-1]
    n_rings = pro[1:] - pro[:-1]
    n_ext = ro[ext + 1] - ro[ext]
    normals = ring_newell_normals(c, ro, ext)
    area2 = np.linalg.norm(normals, axis=1)
    ok = area2 > _EPS_AREA
    n_bad = int((~ok).sum())

    out_tris: list[np.ndarray] = []
    out_poly: list[np.ndarray] = []

    # triangles
    sel = np.flatnonzero(ok & (n_rings == 1) & (n_ext == 3))
    if len(sel):
        s = ro[ext[sel]]
        tris = np.stack([c[s], c[s + 1], c[s + 2]], axis=1)
        out_tris.append(_orient(tris, normals[sel]))
        out_poly.append(sel)

    # quads: split along the diagonal that lies inside
    sel = np.flatnonzero(ok & (n_rings == 1) & (n_ext == 4))
    if len(sel):
        s = ro[ext[sel]]
        p0, p1, p2, p3 = c[s], c[s + 1], c[s + 2], c[s + 3]
        nrm = normals[sel]
        d = p2 - p0
        side1 = np.einsum("ij,ij->i", np.cross(d, p1 - p0), nrm)
        side3 = np.einsum("ij,ij->i", np.cross(d, p3 - p0), nrm)
        use02 = (side1 * side3) < 0
        t1 = np.where(use02[:, None], p0, p1)
        ta = np.stack([np.where(use02[:, None], p0, p1), np.where(use02[:, None], p1, p2),
                       np.where(use02[:, None], p2, p3)], axis=1)
        tb = np.stack([t1, np.where(use02[:, None], p2, p3), np.where(use02[:, None], p3, p0)], axis=1)
        tris = np.concatenate([ta, tb])
        polys = np.concatenate([sel, sel])
        area = np.linalg.norm(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]), axis=1)
        keep = area > _EPS_AREA
        out_tris.append(_orient(tris[keep], np.concatenate([nrm, nrm])[keep]))
        out_poly.append(polys[keep])

    # everything else: earcut in the polygon's plane
    rest = np.flatnonzero(ok & ((n_rings > 1) | (n_ext > 4)))
    rest_tris: list[np.ndarray] = []
    rest_poly: list[np.ndarray] = []
    for p in rest:
        r0, r1 = pro[p], pro[p + 1]
        a, b = ro[r0], ro[r1]
        pts = c[a:b]
        idx = _earcut_polygon(pts, ro[r0 + 1:r1 + 1] - a, normals[p])
        if len(idx):
            rest_tris.append(pts[idx])
            rest_poly.append(np.full(len(idx), p, dtype=np.int64))
        else:
            n_bad += 1
    if rest_tris:
        tris = np.concatenate(rest_tris)
        polys = np.concatenate(rest_poly)
        out_tris.append(_orient(tris, normals[polys]))
        out_poly.append(polys)

    if not out_tris:
        return np.zeros((0, 3, 3)), np.zeros(0, dtype=np.int64), n_bad
    tris = np.concatenate(out_tris)
    polys = np.concatenate(out_poly)
    order = np.argsort(polys, kind="stable")
    return tris[order], polys[order], n_bad


SELF_INTERSECTION_TOL = 1e-3  # relative area mismatch that marks a polygon as self-intersecting (+ 1e-4 m^2)


def polygon_problems(soup: PolygonSoup, tri_poly: np.ndarray, tris: np.ndarray) -> dict[str, np.ndarray]:
    """Indices of the polygons of `soup` that `triangulate` could not use or used doubtfully:

    - 'degenerate_polygons': no triangle came out (zero area, or earcut found no triangulation); dropped;
    - 'self_intersecting_polygons': triangles came out, but their total area differs from the polygon's own
      area (Newell area of the exterior minus its holes) by more than SELF_INTERSECTION_TOL: the ring crosses
      itself (a bow-tie's lobes cancel in the Newell area, not in the triangles); kept as triangulated.

    `tris` (T, 3, 3) and `tri_poly` (T,) are triangulate's output for `soup` (metres, any frame)."""
    n = soup.n_polygons
    if n == 0:
        return {"degenerate_polygons": np.zeros(0, np.int64), "self_intersecting_polygons": np.zeros(0, np.int64)}
    ro, pro = soup.ring_offsets, soup.poly_ring_offsets
    n_rings = len(ro) - 1
    ring_area = np.linalg.norm(ring_newell_normals(soup.coords, ro, np.arange(n_rings)), axis=1) / 2
    ring_poly = np.repeat(np.arange(n), np.diff(pro))
    exterior = np.zeros(n_rings, dtype=bool)
    exterior[pro[:-1]] = True
    poly_area = np.bincount(ring_poly, weights=np.where(exterior, ring_area, -ring_area), minlength=n)
    tri_area = np.linalg.norm(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]), axis=1) / 2
    covered = np.bincount(tri_poly, weights=tri_area, minlength=n)
    has = np.bincount(tri_poly, minlength=n) > 0
    crossing = has & (np.abs(covered - poly_area) > SELF_INTERSECTION_TOL * np.abs(poly_area) + 1e-4)
    return {"degenerate_polygons": np.flatnonzero(~has), "self_intersecting_polygons": np.flatnonzero(crossing)}
