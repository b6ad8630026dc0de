"""Closest-triangle visibility of the camera's pixel rays by rasterisation (numba), checked by Embree.

`render_camera` needs, per pixel, the first triangle its primary ray meets and the distance. Casting 1.44 M
Embree rays one at a time (embreex calls `rtcIntersect1` per ray) costs 150-350 ms per 1600 x 900 frame on
the target machine. Here every triangle is instead scan-converted into an id / depth buffer *sampled at the
same pixel-centre rays*: a pixel takes the triangle whose plane the ray (x, y, 1) of camera axes crosses
inside the triangle (the signs of r . (a x b), r . (b x c), r . (c x a) agree, a, b, c the vertices relative
to the camera centre) nearest along the optical axis, at optical depth >= `near` (the renderer starts its
rays on the near plane). That is the same predicate the ray caster evaluates, so the two agree except where
floating point decides: within ~1e-4 px of a triangle edge (the ray caster works in float32, this kernel in
float64) and where two surfaces lie at (almost) the same depth.

So a pixel is *certain*, and takes the rasterised result, only if
- it is not on the image border,
- its 8 neighbours carry the same triangle id (or all show sky), so the triangle covers the whole 2 x 2 px
  square around the pixel centre (a triangle's image is convex): the pixel is >= 1 px inside it, far from
  any floating-point band of its edges;
- the second-nearest surface along its ray is more than `TIE_REL` x depth behind the nearest one (no
  coplanar duplicates / z-fighting), and the hit is not within `TIE_REL` of the far limit.
All other pixels (silhouettes, triangle edges, ties: typically 10-25 % of a city frame) are cast with
Embree, whose answer is kept. A certain pixel can still differ from a full ray cast only if a triangle the
rasteriser missed by < ~1e-4 px at that pixel centre, and that covers none of its 8 neighbours, lies in
front: a measure-zero band that the tests and docs/benchmarks.md quantify (no differing label seen).
Distances of certain pixels are the exact float64 plane intersection rounded to float32 (the ray caster's
float32 arithmetic differs in the last bits).
"""

from __future__ import annotations

import numpy as np
from numba import njit

EDGE_EPS_PX = 0.01  # pixel centres this close to a triangle boundary are ray cast
TIE_REL = 1e-5  # relative depth gap below which two surfaces count as a tie (Embree decides)


@njit(cache=True)
def raster_nearest(tris, origin, r_cw, fx, fy, cx, cy, near, height, width, edge_eps_px):
    """Rasterise float32 world triangles (T, 3, 3) for a pinhole camera at `origin` (world -> camera `r_cw`).

    Returns ids (H, W) int32 (-1: no triangle), z1 (H, W) float64 optical depth of the nearest surface
    (inf: none), z2 (H, W) float64 optical depth of the second nearest (inf: none), and za (H, W) float64
    the nearest optical depth at which some triangle's boundary passes within `edge_eps_px` pixels of the
    pixel centre (inf: none), i.e. where the inside test is numerically ambiguous.
    """
    ids = np.full((height, width), -1, np.int32)
    z1 = np.full((height, width), np.inf)
    z2 = np.full((height, width), np.inf)
    za = np.full((height, width), np.inf)
    eps = edge_eps_px / fx  # in normalised image-plane units (x = X / Z)
    near_lo = near * (1.0 - 1e-6)
    xs = (np.arange(width) + 0.5 - cx) / fx
    ys = (np.arange(height) + 0.5 - cy) / fy
    zclip = max(near, 1e-6)
    cam = np.empty((3, 3))
    poly = np.empty((4, 3))
    for t in range(tris.shape[0]):
        for i in range(3):
            p0 = tris[t, i, 0] - origin[0]
            p1 = tris[t, i, 1] - origin[1]
            p2 = tris[t, i, 2] - origin[2]
            for a in range(3):
                cam[i, a] = r_cw[a, 0] * p0 + r_cw[a, 1] * p1 + r_cw[a, 2] * p2
        if cam[0, 2] < zclip and cam[1, 2] < zclip and cam[2, 2] < zclip:
            continue
        ax, ay, az = cam[0, 0], cam[0, 1], cam[0, 2]
        bx, by, bz = cam[1, 0], cam[1, 1], cam[1, 2]
        qx, qy, qz = cam[2, 0], cam[2, 1], cam[2, 2]
        # plane normal and offset (camera centre at 0): points p = z (x, y, 1) on it have z = k / (n . r)
        ux, uy, uz = bx - ax, by - ay, bz - az
        vx, vy, vz = qx - ax, qy - ay, qz - az
        nx, ny, nz = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
        if nx == 0.0 and ny == 0.0 and nz == 0.0:
            continue  # degenerate: never hit
        k = nx * ax + ny * ay + nz * az  # = det(a, b, c): its sign orients the edge functions
        if k == 0.0:
            continue  # plane through the camera centre: seen edge-on, no pixel ray crosses it
        # edge planes through the camera centre: a x b, b x c, c x a
        e0x, e0y, e0z = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
        e1x, e1y, e1z = by * qz - bz * qy, bz * qx - bx * qz, bx * qy - by * qx
        e2x, e2y, e2z = qy * az - qz * ay, qz * ax - qx * az, qx * ay - qy * ax
        # scale each edge function to the signed distance (positive inside) of the image point (x, y) from
        # the edge's image line: a ray r = (x, y, 1) meets the triangle in front iff all three are >= 0
        g0 = np.hypot(e0x, e0y)
        g1 = np.hypot(e1x, e1y)
        g2 = np.hypot(e2x, e2y)
        if g0 == 0.0 or g1 == 0.0 or g2 == 0.0:
            continue
        sg = 1.0 if k > 0.0 else -1.0
        g0, g1, g2 = sg / g0, sg / g1, sg / g2
        e0x, e0y, e0z = e0x * g0, e0y * g0, e0z * g0
        e1x, e1y, e1z = e1x * g1, e1y * g1, e1z * g1
        e2x, e2y, e2z = e2x * g2, e2y * g2, e2z * g2
        # screen bounding box of the part in front of the clip plane (Sutherland-Hodgman, one plane)
        m = 0
        for i in range(3):
            j = (i + 1) % 3
            zi, zj = cam[i, 2], cam[j, 2]
            if zi >= zclip:
                poly[m, 0], poly[m, 1], poly[m, 2] = cam[i, 0], cam[i, 1], zi
                m += 1
            if (zi >= zclip) != (zj >= zclip):
                s = (zclip - zi) / (zj - zi)
                poly[m, 0] = cam[i, 0] + s * (cam[j, 0] - cam[i, 0])
                poly[m, 1] = cam[i, 1] + s * (cam[j, 1] - cam[i, 1])
                poly[m, 2] = zclip
                m += 1
        umin, umax, vmin, vmax = np.inf, -np.inf, np.inf, -np.inf
        for i in range(m):
            pu = fx * poly[i, 0] / poly[i, 2] + cx
            pv = fy * poly[i, 1] / poly[i, 2] + cy
            umin, umax = min(umin, pu), max(umax, pu)
            vmin, vmax = min(vmin, pv), max(vmax, pv)
        # pixel centres (i + 0.5) inside the box, widened by one pixel against rounding; clamped to the image
        u0f = max(np.floor(umin - 0.5) - 1.0, 0.0)
        u1f = min(np.ceil(umax - 0.5) + 1.0, width - 1.0)
        v0f = max(np.floor(vmin - 0.5) - 1.0, 0.0)
        v1f = min(np.ceil(vmax - 0.5) + 1.0, height - 1.0)
        if u0f > u1f or v0f > v1f:
            continue
        u0, u1, v0, v1 = int(u0f), int(u1f), int(v0f), int(v1f)
        for v in range(v0, v1 + 1):
            y = ys[v]
            c0 = e0y * y + e0z
            c1 = e1y * y + e1z
            c2 = e2y * y + e2z
            cn = ny * y + nz
            for u in range(u0, u1 + 1):
                x = xs[u]
                s0 = e0x * x + c0
                s1 = e1x * x + c1
                s2 = e2x * x + c2
                mrg = min(s0, s1, s2)
                if mrg < -eps:
                    continue
                den = nx * x + cn
                if den == 0.0:
                    continue
                z = k / den
                if mrg <= eps:  # boundary within edge_eps_px: record the depth of the ambiguity
                    if z >= near_lo and z < za[v, u]:
                        za[v, u] = z
                    if mrg < 0.0:
                        continue
                if z < near:
                    if z >= near_lo and z < za[v, u]:
                        za[v, u] = z  # at the near plane: ambiguous too
                    continue
                if z < z1[v, u]:
                    z2[v, u] = z1[v, u]
                    z1[v, u] = z
                    ids[v, u] = t
                elif z < z2[v, u]:
                    z2[v, u] = z
    return ids, z1, z2, za


@njit(cache=True)
def certain_hits(ids, z1, z2, za, xs, ys, near, far, tie_rel, tri, dist):
    """Fill tri / dist (flat, row-major) of the certain pixels (module docstring); returns the flat indices
    of the uncertain pixels, to be ray cast. dist is metres along the unit ray from its near-plane start."""
    h, w = ids.shape
    todo = np.empty(h * w, np.int64)
    m = 0
    for v in range(h):
        for u in range(w):
            n = v * w + u
            t = ids[v, u]
            z = z1[v, u]
            za_ = za[v, u]  # no ambiguous boundary at or in front of the surface (sky: none at all)
            ok = za_ == np.inf or za_ > z * (1.0 + tie_rel)
            if ok and t >= 0:
                if z2[v, u] - z <= tie_rel * z:
                    ok = False
                else:
                    norm = np.sqrt(xs[u] * xs[u] + ys[v] * ys[v] + 1.0)
                    d = (z - near) * norm
                    if abs(d - far) <= tie_rel * far:
                        ok = False
                    elif d > far:
                        tri[n] = -1
                        dist[n] = np.inf
                    else:
                        tri[n] = t
                        dist[n] = np.float32(d)
            elif ok:
                tri[n] = -1
                dist[n] = np.inf
            if not ok:
                todo[m] = n
                m += 1
    return todo[:m]
