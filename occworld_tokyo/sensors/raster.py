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
- no triangle's boundary (at a depth in front of or near its surface) passes within `EDGE_EPS_PX` of the
  pixel centre: every inside test at that pixel is decided by a margin ~100x the float32 error (the ray
  caster rounds rays and vertices to float32: ~1e-4 px);
- the second-nearest surface along its ray lies clearly behind the nearest one: their depths z1 < z2 with
  z2 - TIE_REL * e2 > z1 + TIE_REL * e1, e = z / |cos(incidence)| (the ray caster's float32 depth error
  grows like 1/|cos| at grazing incidence), so coplanar duplicates and z-fighting go to Embree; the same
  margin applies to ambiguous boundaries behind the surface and to the far limit.
All other pixels are cast with Embree, whose answer is kept: on the real tile 0.05-0.2 % of a frame; on
the sample district's drone views up to ~20 % (its road surfaces lie within a fraction of a millimetre
of the terrain: z-fighting).
Sky pixels are certain when no triangle boundary passes near them at any depth. A certain pixel could
still differ from a full ray cast only if the ray caster's float32 error exceeded these margins (about
100x its expected size); docs/benchmarks.md reports the measured differences (no label, none in sky).
Distances of certain pixels are the exact float64 plane intersection rounded to float32 (the ray caster's
float32 arithmetic differs in the last bits).
"""

from __future__ import annotations

import numpy as np
from numba import njit

EDGE_EPS_PX = 0.01  # pixel centres this close to a triangle boundary are ray cast
TIE_REL = 1e-5  # depth margin, in units of z / |cos(incidence)|, under which two surfaces count as a tie


@njit(cache=True)
def raster_nearest(tris, origin, r_cw, fx, fy, cx, cy, near, height, width, edge_eps_px, tie_rel):
    """Rasterise float32 world triangles (T, 3, 3) for a pinhole camera at `origin` (world -> camera `r_cw`).

    Returns ids (H, W) int32 (-1: no triangle); z1, z2 (H, W) float64 optical depths of the nearest and
    second nearest surface (inf: none; z2 float32); e1, e2 (H, W) float32 their depth error scales z / |cos(incidence)|
    (|cos| clamped to >= 1e-3): the ray caster's float32 depth error grows like that at grazing incidence;
    za (H, W) float32: the lowest `z - tie_rel * e` over triangles whose boundary passes within
    `edge_eps_px` pixels of the pixel centre (inf: none), where the inside test is numerically ambiguous.
    """
    ids = np.full((height, width), -1, np.int32)
    z1 = np.full((height, width), np.inf)
    # float32 suffices for the margins (their rounding is ~1e-7 relative, the margins 1e-5 and up)
    z2 = np.full((height, width), np.inf, np.float32)
    za = np.full((height, width), np.inf, np.float32)
    e1 = np.full((height, width), np.inf, np.float32)
    e2 = np.full((height, width), np.inf, np.float32)
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
        gn = 1.0 / np.sqrt(nx * nx + ny * ny + nz * nz)
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
            # this row's span: each edge function (linear in x) must be >= -eps; widened by a pixel
            xlo, xhi = -np.inf, np.inf
            for ex, cc in ((e0x, c0), (e1x, c1), (e2x, c2)):
                if ex > 0.0:
                    xlo = max(xlo, (-eps - cc) / ex)
                elif ex < 0.0:
                    xhi = min(xhi, (-eps - cc) / ex)
                elif cc < -eps:
                    xhi = -np.inf
            if xlo > xhi:
                continue
            ua = max(float(u0), np.floor(xlo * fx + cx - 0.5) - 1.0)
            ub = min(float(u1), np.ceil(xhi * fx + cx - 0.5) + 1.0)
            if ua > ub:
                continue
            for u in range(int(ua), int(ub) + 1):
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
                if z < near_lo:
                    continue  # behind the near plane (with a margin)
                if mrg <= eps or z < near:  # ambiguous: boundary within edge_eps_px, or at the near plane
                    err = z / max(abs(den) * gn / np.sqrt(x * x + y * y + 1.0), 1e-3)
                    za[v, u] = min(za[v, u], z - tie_rel * err)
                    if mrg < 0.0 or z < near:
                        continue
                if z >= z2[v, u]:
                    continue  # behind two nearer surfaces
                err = z / max(abs(den) * gn / np.sqrt(x * x + y * y + 1.0), 1e-3)
                if z < z1[v, u]:
                    z2[v, u] = z1[v, u]
                    e2[v, u] = e1[v, u]
                    z1[v, u] = z
                    e1[v, u] = err
                    ids[v, u] = t
                else:
                    z2[v, u] = z
                    e2[v, u] = err
    return ids, z1, z2, e1, e2, za


@njit(cache=True)
def certain_hits(ids, z1, z2, e1, e2, za, xs, ys, near, far, tie_rel, tri, dist):
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
            if t < 0:  # sky: certain when no triangle boundary is near the pixel centre at all
                ok = za[v, u] == np.inf
                if ok:
                    tri[n] = -1
                    dist[n] = np.inf
            else:
                hi = z + tie_rel * e1[v, u]
                # no ambiguous boundary at or in front of the surface; the next surface clearly behind
                ok = za[v, u] > hi and (z2[v, u] == np.inf or z2[v, u] - tie_rel * e2[v, u] > hi)
                if ok:
                    norm = np.sqrt(xs[u] * xs[u] + ys[v] * ys[v] + 1.0)
                    d = (z - near) * norm
                    if abs(d - far) <= tie_rel * (far + e1[v, u] * norm):
                        ok = False
                    elif d > far:
                        tri[n] = -1
                        dist[n] = np.inf
                    else:
                        tri[n] = t
                        dist[n] = np.float32(d)
            if not ok:
                todo[m] = n
                m += 1
    return todo[:m]
