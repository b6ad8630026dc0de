"""numba kernels of the voxel world build (the default engine).

Measured on the 2-core machine for a synthetic 1 km x 1 km city (2436^2 columns, ~18 M candidate
(triangle, centre) pairs): the pure-numpy path (`raster.py` + sort-based reductions, kept as the reference
engine `engine="numpy"`) spends ~1.9 s rasterising, ~0.9 s reducing per (object, column) and ~1.0 s
writing runs. These kernels do the same work in one pass per object with O(columns) scratch memory and
no sorting. The rules are those of `voxelize.py`; both engines give identical worlds (tested).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_INSIDE_EPS = 1e-6  # same as raster._INSIDE_EPS
_THIN = 0.01
_LEVEL_EPS = 1e-3


@njit(cache=True, inline="always")
def _point_level(z, z0, dz):
    return np.int64(np.floor((z - z0) / dz + _LEVEL_EPS))


@njit(cache=True, inline="always")
def _top_level(z, z0, dz):
    return np.int64(np.ceil((z - z0) / dz - _LEVEL_EPS)) - 1


@njit(cache=True)
def _rasterise_triangle(tri, x0, y0, dx, dy, nx, ny, o, stamp, zlo, zhi, touched, n_touched):
    """Add one triangle's covered column centres to the per-object scratch; returns the new n_touched."""
    u0 = (tri[0, 0] - x0) / dx - 0.5
    u1 = (tri[1, 0] - x0) / dx - 0.5
    u2 = (tri[2, 0] - x0) / dx - 0.5
    v0 = (tri[0, 1] - y0) / dy - 0.5
    v1 = (tri[1, 1] - y0) / dy - 0.5
    v2 = (tri[2, 1] - y0) / dy - 0.5
    i_lo = max(np.ceil(min(u0, u1, u2) - 1e-9), 0.0)
    i_hi = min(np.floor(max(u0, u1, u2) + 1e-9), nx - 1.0)
    j_lo = max(np.ceil(min(v0, v1, v2) - 1e-9), 0.0)
    j_hi = min(np.floor(max(v0, v1, v2) + 1e-9), ny - 1.0)
    du1, dv1, du2, dv2 = u1 - u0, v1 - v0, u2 - u0, v2 - v0
    area2 = du1 * dv2 - du2 * dv1
    if i_hi < i_lo or j_hi < j_lo or abs(area2) <= 1e-9:
        return n_touched
    a1, b1 = dv2 / area2, -du2 / area2
    a2, b2 = -dv1 / area2, du1 / area2
    z0t, z1t, z2t = tri[0, 2], tri[1, 2], tri[2, 2]
    dz1, dz2 = z1t - z0t, z2t - z0t
    gu, gv = dz1 * a1 + dz2 * a2, dz1 * b1 + dz2 * b2
    c = z0t - gu * u0 - gv * v0
    zmn, zmx = min(z0t, z1t, z2t), max(z0t, z1t, z2t)
    for i in range(int(i_lo), int(i_hi) + 1):
        pu = i - u0
        for j in range(int(j_lo), int(j_hi) + 1):
            pv = j - v0
            l1 = a1 * pu + b1 * pv
            l2 = a2 * pu + b2 * pv
            if l1 >= -_INSIDE_EPS and l2 >= -_INSIDE_EPS and l1 + l2 <= 1.0 + _INSIDE_EPS:
                z = np.float32(min(max(c + gu * i + gv * j, zmn), zmx))
                col = i * ny + j
                if stamp[col] != o:
                    stamp[col] = o
                    zlo[col] = z
                    zhi[col] = z
                    touched[n_touched] = col
                    n_touched += 1
                else:
                    if z < zlo[col]:
                        zlo[col] = z
                    if z > zhi[col]:
                        zhi[col] = z
    return n_touched


@njit(cache=True)
def _grow(a, need):
    if need <= len(a):
        return a
    b = np.empty(max(need, 2 * len(a)), dtype=a.dtype)
    b[:len(a)] = a
    return b


@njit(cache=True)
def object_runs(tris, obj_start, fill, x0, y0, dx, dy, nx, ny, z0, dz):
    """Vertical runs (col, k_lo, k_hi, value) of all SOLID (fill 0) and SURFACE (fill 1) objects.

    `tris` are sorted by object; object o owns tris[obj_start[o]:obj_start[o + 1]]. value = o + 1.
    """
    n_obj = len(obj_start) - 1
    ncol = nx * ny
    stamp = np.full(ncol, -1, dtype=np.int64)
    zlo = np.zeros(ncol, dtype=np.float32)
    zhi = np.zeros(ncol, dtype=np.float32)
    touched = np.empty(ncol, dtype=np.int64)
    cap = 1 << 20
    r_col = np.empty(cap, dtype=np.int64)
    r_lo = np.empty(cap, dtype=np.int64)
    r_hi = np.empty(cap, dtype=np.int64)
    r_val = np.empty(cap, dtype=np.int64)
    n = 0
    for o in range(n_obj):
        a, b = obj_start[o], obj_start[o + 1]
        if fill[o] > 1 or b <= a:
            continue
        nt = 0
        for t in range(a, b):
            nt = _rasterise_triangle(tris[t], x0, y0, dx, dy, nx, ny, o, stamp, zlo, zhi, touched, nt)
        need = n + max(2 * nt, 1)
        if need > len(r_col):
            r_col, r_lo, r_hi, r_val = _grow(r_col, need), _grow(r_lo, need), _grow(r_hi, need), _grow(r_val, need)
        if nt == 0:  # fallback: the column of the bbox centre, over the object's height
            mn = tris[a:b].reshape(-1, 3)
            cx = 0.5 * (mn[:, 0].min() + mn[:, 0].max())
            cy = 0.5 * (mn[:, 1].min() + mn[:, 1].max())
            i = min(max(int(np.floor((cx - x0) / dx)), 0), nx - 1)
            j = min(max(int(np.floor((cy - y0) / dy)), 0), ny - 1)
            klo = _point_level(mn[:, 2].min(), z0, dz)
            r_col[n], r_lo[n], r_hi[n], r_val[n] = i * ny + j, klo, max(klo, _top_level(mn[:, 2].max(), z0, dz)), o + 1
            n += 1
            continue
        if fill[o] == 1:  # SURFACE: the levels of the lowest and the highest hit
            for q in range(nt):
                col = touched[q]
                k1 = _point_level(zlo[col], z0, dz)
                k2 = _point_level(zhi[col], z0, dz)
                r_col[n], r_lo[n], r_hi[n], r_val[n] = col, k1, k1, o + 1
                n += 1
                if k2 != k1:
                    r_col[n], r_lo[n], r_hi[n], r_val[n] = col, k2, k2, o + 1
                    n += 1
            continue
        # SOLID: median floor / roof over two-hit columns for the one-hit ones
        lo_v = np.empty(nt, dtype=np.float32)
        hi_v = np.empty(nt, dtype=np.float32)
        m = 0
        for q in range(nt):
            col = touched[q]
            if zhi[col] - zlo[col] >= _THIN:
                lo_v[m] = zlo[col]
                hi_v[m] = zhi[col]
                m += 1
        shell_base = tris[a:b, :, 2].min()
        med_lo = np.sort(lo_v[:m])[m // 2] if m else 0.0
        med_hi = np.sort(hi_v[:m])[m // 2] if m else 0.0
        for q in range(nt):
            col = touched[q]
            zb = np.float64(zlo[col])
            zt = np.float64(zhi[col])
            if zt - zb < _THIN:
                h = zb
                if m == 0:
                    zb, zt = min(shell_base, h), h
                elif abs(h - med_lo) < abs(med_hi - h):
                    zb, zt = h, max(med_hi, h)
                else:
                    zb, zt = min(med_lo, h), h
            klo = _point_level(zb, z0, dz)
            r_col[n], r_lo[n], r_hi[n], r_val[n] = col, klo, max(klo, _top_level(zt, z0, dz)), o + 1
            n += 1
    return r_col[:n], r_lo[:n], r_hi[:n], r_val[:n]


@njit(cache=True)
def terrain_top(tris, tri_obj, x0, y0, dx, dy, nx, ny):
    """Per column: highest TERRAIN hit (-inf where none) and the 1-based object value that gave it."""
    ncol = nx * ny
    top = np.full(ncol, -np.inf, dtype=np.float32)
    val = np.zeros(ncol, dtype=np.int64)
    stamp = np.full(ncol, -1, dtype=np.int64)
    zlo = np.zeros(ncol, dtype=np.float32)
    zhi = np.zeros(ncol, dtype=np.float32)
    touched = np.empty(ncol, dtype=np.int64)
    for t in range(len(tris)):
        nt = _rasterise_triangle(tris[t], x0, y0, dx, dy, nx, ny, t, stamp, zlo, zhi, touched, 0)
        for q in range(nt):
            col = touched[q]
            if zhi[col] >= top[col]:
                top[col] = zhi[col]
                val[col] = tri_obj[t] + 1
    return top, val


@njit(cache=True)
def write_runs(objects_flat, nz, col, k_lo, k_hi, val, priority):
    """Write runs into the flat (ncol * nz) object array; a voxel keeps the higher-priority object, and
    between equal priorities the lower object value. Order independent. Returns top level per column."""
    ncol = len(objects_flat) // nz
    top = np.full(ncol, -1, dtype=np.int64)
    for r in range(len(col)):
        lo = max(k_lo[r], 0)
        hi = min(k_hi[r], nz - 1)
        if hi < lo:
            continue
        c = col[r]
        v = val[r]
        p = priority[v]
        if hi > top[c]:
            top[c] = hi
        base = c * nz
        for k in range(lo, hi + 1):
            cur = objects_flat[base + k]
            if cur == 0 or p > priority[cur] or (p == priority[cur] and v < cur):
                objects_flat[base + k] = v
    return top


@njit(cache=True)
def gather_columns(objects, ci, cj, inside, k0, nzg, label_lut, inst_lut):
    """Ego crop: for each ego column (a, b) copy world levels k0 .. k0 + nzg - 1 of world column
    (ci[a, b], cj[a, b]) through the label and instance lookups; outside the world or its levels: free."""
    nxg, nyg = ci.shape
    nz = objects.shape[2]
    labels = np.zeros((nxg, nyg, nzg), dtype=np.uint8)
    instances = np.zeros((nxg, nyg, nzg), dtype=np.int32)
    lo = max(k0, 0)
    hi = min(k0 + nzg, nz)
    for a in range(nxg):
        for b in range(nyg):
            if not inside[a, b]:
                continue
            col = objects[ci[a, b], cj[a, b]]
            for k in range(lo, hi):
                v = col[k]
                if v != 0:
                    labels[a, b, k - k0] = label_lut[v]
                    instances[a, b, k - k0] = inst_lut[v]
    return labels, instances
