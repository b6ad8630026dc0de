"""Occ3D-style visibility masks in the ego grid (bool (200, 200, 121), index [X, Y, Z]).

`lidar_mask`: the voxels each lidar ray traverses from the sensor to its return (observed free) plus the
voxel of the return itself (observed occupied; the voxel `GridSpec.to_index` gives for the point). Rays
without a return may be passed as directions and are traversed to `max_range`. Traversal is the exact
3D DDA of Amanatides & Woo in voxel units; a segment is first clipped to the grid box, so rays that start
outside the grid (above it) enter it, and rays that leave it stop.

`camera_mask`: the voxels traversed by camera rays from the camera centre to the surface each pixel sees
(the depth image; sky rays run on until they leave the grid), plus the voxel holding every pixel's surface
point. The surface voxels come from every pixel; the free-space traversal uses every `stride`-th pixel in
u and v (default 4: neighbouring traversed rays are 4 px apart, i.e. <= 4 * 134 m / 1266 px = 0.42 m at
the farthest grid corner seen from 120 m altitude, and about 0.18 m at the rover's farthest grid voxel),
so a free voxel only grazed between two sampled rays can be left out. Voxels behind a surface are never
marked (a ray stops at its surface).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from occworld_tokyo.grid import DEFAULT_GRID, EgoFrame, GridSpec
from occworld_tokyo.sensors.camera import camera_pose_world
from occworld_tokyo.sensors.specs import CameraSpec

_EPS_T = 1e-9
CAMERA_RAY_STRIDE = 4  # traverse every 4th pixel's ray in u and v (<= ~0.42 m apart inside the grid)


@njit(cache=True, inline="always")
def _clip_to_box(a0, a1, a2, d0, d1, d2, n0, n1, n2):
    """Parameter interval [t0, t1] of a + t d (t in [0, 1]) inside the box [0, n] (voxel units)."""
    t0, t1 = 0.0, 1.0
    for a, d, n in ((a0, d0, n0), (a1, d1, n1), (a2, d2, n2)):
        if abs(d) < _EPS_T:
            if a < 0.0 or a >= n:
                return 1.0, 0.0
        else:
            ta = (0.0 - a) / d
            tb = (n - a) / d
            if ta > tb:
                ta, tb = tb, ta
            if ta > t0:
                t0 = ta
            if tb < t1:
                t1 = tb
    return t0, t1


@njit(cache=True)
def _traverse_segments(starts, ends, mark_end, shape, mask):
    """Mark the voxels of segments starts[i] -> ends[i] (voxel units, float64) in mask (uint8, shape)."""
    n0, n1, n2 = shape[0], shape[1], shape[2]
    for r in range(starts.shape[0]):
        a0, a1, a2 = starts[r, 0], starts[r, 1], starts[r, 2]
        d0, d1, d2 = ends[r, 0] - a0, ends[r, 1] - a1, ends[r, 2] - a2
        t0, t1 = _clip_to_box(a0, a1, a2, d0, d1, d2, n0, n1, n2)
        if t0 <= t1:
            p0, p1, p2 = a0 + t0 * d0, a1 + t0 * d1, a2 + t0 * d2
            i = min(max(int(np.floor(p0)), 0), n0 - 1)
            j = min(max(int(np.floor(p1)), 0), n1 - 1)
            k = min(max(int(np.floor(p2)), 0), n2 - 1)
            # per axis: step direction, parameter of the next boundary crossing, parameter per voxel
            s0 = 1 if d0 > 0 else -1
            s1 = 1 if d1 > 0 else -1
            s2 = 1 if d2 > 0 else -1
            inf = np.inf
            m0 = ((i + (1 if d0 > 0 else 0)) - a0) / d0 if abs(d0) > _EPS_T else inf
            m1 = ((j + (1 if d1 > 0 else 0)) - a1) / d1 if abs(d1) > _EPS_T else inf
            m2 = ((k + (1 if d2 > 0 else 0)) - a2) / d2 if abs(d2) > _EPS_T else inf
            e0 = 1.0 / abs(d0) if abs(d0) > _EPS_T else inf
            e1 = 1.0 / abs(d1) if abs(d1) > _EPS_T else inf
            e2 = 1.0 / abs(d2) if abs(d2) > _EPS_T else inf
            while True:
                mask[i, j, k] = 1
                if m0 <= m1 and m0 <= m2:
                    if m0 >= t1:
                        break
                    i += s0
                    m0 += e0
                    if i < 0 or i >= n0:
                        break
                elif m1 <= m2:
                    if m1 >= t1:
                        break
                    j += s1
                    m1 += e1
                    if j < 0 or j >= n1:
                        break
                else:
                    if m2 >= t1:
                        break
                    k += s2
                    m2 += e2
                    if k < 0 or k >= n2:
                        break
        if mark_end:
            b0, b1, b2 = np.floor(ends[r, 0]), np.floor(ends[r, 1]), np.floor(ends[r, 2])
            if 0 <= b0 < n0 and 0 <= b1 < n1 and 0 <= b2 < n2:
                mask[int(b0), int(b1), int(b2)] = 1


def _to_voxel_units(points: np.ndarray, grid: GridSpec) -> np.ndarray:
    return np.ascontiguousarray((np.asarray(points, dtype=np.float64) - grid.lower) / np.array(grid.voxel_size))


def lidar_mask(origin_ego: np.ndarray, points_ego_hit: np.ndarray, grid: GridSpec = DEFAULT_GRID,
               miss_dirs_ego: np.ndarray | None = None, max_range: float | None = None) -> np.ndarray:
    """Voxels observed by lidar rays (module docstring). Returns bool grid.shape.

    origin_ego (3,): sensor origin; points_ego_hit (N, 3+): returns (extra columns ignored), ego frame.
    miss_dirs_ego (M, 3) with max_range: rays without a return, traversed from the origin to max_range.
    """
    shape = np.array(grid.shape, dtype=np.int64)
    mask = np.zeros(grid.shape, dtype=np.uint8)
    origin = np.asarray(origin_ego, dtype=np.float64).reshape(1, 3)
    pts = np.asarray(points_ego_hit, dtype=np.float64).reshape(-1, np.asarray(points_ego_hit).shape[-1])[:, :3]
    o_vox = _to_voxel_units(origin, grid)
    if len(pts):
        _traverse_segments(np.repeat(o_vox, len(pts), axis=0), _to_voxel_units(pts, grid), True, shape, mask)
    if miss_dirs_ego is not None and len(miss_dirs_ego):
        if max_range is None:
            raise ValueError("miss_dirs_ego needs max_range")
        d = np.asarray(miss_dirs_ego, dtype=np.float64).reshape(-1, 3)
        d = d / np.linalg.norm(d, axis=1, keepdims=True)
        ends = origin + d * float(max_range)
        _traverse_segments(np.repeat(o_vox, len(d), axis=0), _to_voxel_units(ends, grid), False, shape, mask)
    return mask.view(bool)


@njit(cache=True)
def _camera_rays(depth, stride, fx, fy, cx, cy, origin, r_ego_cam, lower, vsize, far, shape, mask):
    """Voxel-unit segment ends of every `stride`-th pixel ray; marks the voxel of every pixel's hit point.

    Returns ends (M, 3) of the sampled rays (their surface point, or `far` metres out for sky), in voxel
    units of the grid; the voxel holding each finite-depth pixel's surface point is set in `mask` (points
    outside the grid are ignored). One pass, no per-pixel hit array.
    """
    h, w = depth.shape
    n_s = ((h + stride - 1) // stride) * ((w + stride - 1) // stride)
    ends = np.empty((n_s, 3))
    m = 0
    for v in range(h):
        yc = (v + 0.5 - cy) / fy
        for u in range(w):
            xc = (u + 0.5 - cx) / fx
            d = depth[v, u]
            sampled = (v % stride == 0) and (u % stride == 0)
            if not sampled and not np.isfinite(d):
                continue
            # ray (xc, yc, 1) in camera axes scaled to the optical depth (or far for sky)
            scale = d if np.isfinite(d) else far
            e0 = (origin[0] + scale * (r_ego_cam[0, 0] * xc + r_ego_cam[0, 1] * yc + r_ego_cam[0, 2])
                  - lower[0]) / vsize[0]
            e1 = (origin[1] + scale * (r_ego_cam[1, 0] * xc + r_ego_cam[1, 1] * yc + r_ego_cam[1, 2])
                  - lower[1]) / vsize[1]
            e2 = (origin[2] + scale * (r_ego_cam[2, 0] * xc + r_ego_cam[2, 1] * yc + r_ego_cam[2, 2])
                  - lower[2]) / vsize[2]
            if sampled:
                ends[m, 0], ends[m, 1], ends[m, 2] = e0, e1, e2
                m += 1
            if np.isfinite(d):
                i, j, k = np.floor(e0), np.floor(e1), np.floor(e2)
                if 0 <= i < shape[0] and 0 <= j < shape[1] and 0 <= k < shape[2]:
                    mask[int(i), int(j), int(k)] = 1
    return ends[:m]


def camera_mask(depth: np.ndarray, position: np.ndarray, quat_xyzw: np.ndarray, frame: EgoFrame,
                spec: CameraSpec, grid: GridSpec = DEFAULT_GRID, stride: int = CAMERA_RAY_STRIDE) -> np.ndarray:
    """Voxels seen by the camera (module docstring). Returns bool grid.shape.

    depth (H, W): `CameraFrame.depth` (optical-axis metres, inf = sky) rendered from the body pose
    (position, quat_xyzw, world frame) through `spec`; frame: the ego grid frame of the same instant.
    """
    depth = np.ascontiguousarray(depth, dtype=np.float32)
    if depth.shape != (spec.height, spec.width):
        raise ValueError(f"depth image {depth.shape} does not match the camera ({spec.height}, {spec.width})")
    if stride < 1:
        raise ValueError("stride must be >= 1")
    origin_w, r_wc = camera_pose_world(position, quat_xyzw, spec)
    origin_ego = frame.world_to_ego(origin_w)
    r_ego_cam = np.ascontiguousarray(np.stack([frame.rotate_to_ego(r_wc[:, c]) for c in range(3)], axis=1))
    vsize = np.array(grid.voxel_size, dtype=np.float64)
    shape = np.array(grid.shape, dtype=np.int64)
    far = float(np.linalg.norm(np.array(grid.shape) * vsize)) + float(np.linalg.norm(origin_ego - grid.lower))
    mask = np.zeros(grid.shape, dtype=np.uint8)
    ends = _camera_rays(depth, int(stride), float(spec.fx), float(spec.fy), float(spec.cx), float(spec.cy),
                        origin_ego, r_ego_cam, np.asarray(grid.lower, np.float64), vsize, far, shape, mask)
    o_vox = _to_voxel_units(origin_ego[None], grid)
    _traverse_segments(np.repeat(o_vox, len(ends), axis=0), ends, True, shape, mask)
    return mask.view(bool)
