"""Camera rendering: per pixel, the first surface on the primary ray through the pixel centre.

Visibility (which triangle each pixel ray meets first, and how far) is what one Embree ray per pixel gives;
for step 1 it is computed by `raster.py` instead: every triangle is rasterised at the pixel-centre rays
(numba), and only the pixels where that is numerically ambiguous (a triangle boundary within 0.01 px of the
pixel centre, two surfaces within 1e-5 relative depth, a hit at the far limit) are ray cast with Embree. The
result equals the all-rays render in every label and sky pixel; depths differ by float32 rounding
(measured <= 6e-5 relative at grazing incidence, docs/benchmarks.md "Sensors"); `tests/test_sensors_camera_fast.py` checks this.

Shading (docs/sensors.md): the hit object's class colour (`labels.palette()`), varied slightly per
instance so neighbouring buildings stay distinguishable, lit by ambient + Lambert(sun) on the triangle's
normal (turned to face the camera), then blended towards the horizon colour with exponential fog by
distance. Rays that hit nothing show a sky gradient from the horizon colour to the zenith colour by the
ray's elevation. Depth is metres along the optical axis (camera z), inf where nothing is hit.
`step` > 1 casts one ray per step x step pixel block (through the block centre) and repeats the result:
a faster, blockier preview; the default is one ray per pixel.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numba import njit
from PIL import Image

from occworld_tokyo import labels as L
from occworld_tokyo.citymodel.mesh import CityMesh
from occworld_tokyo.rotations import unit_quat_to_matrix as quat_to_matrix
from occworld_tokyo.sensors.raster import EDGE_EPS_PX, TIE_REL, certain_hits, raster_nearest
from occworld_tokyo.sensors.raycast import RayCaster
from occworld_tokyo.sensors.specs import CameraSpec

SUN_DIR = np.array([0.35, -0.45, 0.82]) / np.linalg.norm([0.35, -0.45, 0.82])  # towards the sun (SE, ~55 deg up)
AMBIENT = 0.45
DIFFUSE = 0.55
FOG_DISTANCE = 900.0  # m; fog fraction = 1 - exp(-range / FOG_DISTANCE)
HORIZON_RGB = np.array([200.0, 215.0, 230.0])
ZENITH_RGB = np.array([70.0, 120.0, 200.0])
INSTANCE_TINT = 0.10  # +- relative brightness variation per instance


@dataclass
class CameraFrame:
    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 metres along the optical axis, inf for sky
    labels: np.ndarray  # (H, W) uint8 storage label id per pixel (0 = sky)
    origin_world: np.ndarray  # (3,) camera centre, world frame
    R_world_cam: np.ndarray  # (3, 3) camera (OpenCV axes) -> world rotation


def camera_pose_world(position: np.ndarray, quat_xyzw: np.ndarray, spec: CameraSpec
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Camera centre (3,) and camera -> world rotation (3, 3) for a body pose."""
    r_wb = quat_to_matrix(quat_xyzw)
    origin = np.asarray(position, dtype=np.float64).reshape(3) + r_wb @ np.asarray(spec.mount_xyz, np.float64)
    return origin, r_wb @ spec.R_body_cam


def instance_tint(instances: np.ndarray) -> np.ndarray:
    """Deterministic brightness factor in [1 - INSTANCE_TINT, 1 + INSTANCE_TINT] per instance id."""
    h = (np.asarray(instances, dtype=np.int64).astype(np.uint64) * np.uint64(2654435761)) % np.uint64(1000)
    return 1.0 + INSTANCE_TINT * (h.astype(np.float32) / 500.0 - 1.0)


@lru_cache(maxsize=8)
def _unit_rays_cam(spec: CameraSpec, step: int) -> np.ndarray:
    """(N, 3) float64 unit pixel rays in camera axes (row-major pixels), cached per spec."""
    rays = spec.pixel_rays_cam(step).reshape(-1, 3)
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


@njit(cache=True)
def _camera_rays_world(unit_cam, r_wc, origin, near, starts, dirs):
    """World directions and near-plane start points of all pixel rays (in place, float32)."""
    for n in range(unit_cam.shape[0]):
        cx, cy, cz = unit_cam[n, 0], unit_cam[n, 1], unit_cam[n, 2]
        t0 = near / cz
        for a in range(3):
            d = r_wc[a, 0] * cx + r_wc[a, 1] * cy + r_wc[a, 2] * cz
            dirs[n, a] = d
            starts[n, a] = origin[a] + d * t0


@njit(cache=True)
def _camera_dirs_world(unit_cam, r_wc, dirs):
    """World directions of all pixel rays (float32, in place): the `dirs` of `_camera_rays_world`, bit for bit."""
    for n in range(unit_cam.shape[0]):
        cx, cy, cz = unit_cam[n, 0], unit_cam[n, 1], unit_cam[n, 2]
        for a in range(3):
            dirs[n, a] = r_wc[a, 0] * cx + r_wc[a, 1] * cy + r_wc[a, 2] * cz


@njit(cache=True)
def _shade_pixels(dist, tri, dirs, unit_cam, near, tri_label, tri_tint, normals, palette, sun, ambient, diffuse,
                  fog_distance, horizon, zenith, rgb, depth, label_img):
    """Per-pixel colour, optical depth and label from the ray hits (the module docstring's shading)."""
    for n in range(dist.shape[0]):
        t = tri[n]
        dz = dirs[n, 2]
        if t < 0:
            s = np.sqrt(min(max(dz, 0.0), 1.0))
            for c in range(3):
                rgb[n, c] = np.uint8(min(max(horizon[c] * (1.0 - s) + zenith[c] * s + 0.5, 0.0), 255.0))
            depth[n] = np.inf
            label_img[n] = 0
            continue
        rng = dist[n] + near / unit_cam[n, 2]
        nx, ny, nz = normals[t, 0], normals[t, 1], normals[t, 2]
        if nx * dirs[n, 0] + ny * dirs[n, 1] + nz * dz > 0.0:  # turn the normal towards the camera
            nx, ny, nz = -nx, -ny, -nz
        lam = max(nx * sun[0] + ny * sun[1] + nz * sun[2], 0.0)
        light = (ambient + diffuse * lam) * tri_tint[t]
        fog = 1.0 - np.exp(-rng / fog_distance)
        lab = tri_label[t]
        for c in range(3):
            v = palette[lab, c] * light * (1.0 - fog) + horizon[c] * fog
            rgb[n, c] = np.uint8(min(max(v + 0.5, 0.0), 255.0))
        depth[n] = rng * unit_cam[n, 2]
        label_img[n] = lab


def _mesh_tables(caster: RayCaster, mesh: CityMesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-triangle label, tint and float32 vertices of `mesh`, computed once per (caster, mesh) pair."""
    cached = getattr(caster, "_camera_tables", None)
    if cached is not None and cached[0] is mesh:
        return cached[1]
    obj = mesh.tri_object
    tables = (np.ascontiguousarray(mesh.object_label[obj]),
              instance_tint(mesh.object_instance)[obj].astype(np.float32),
              np.ascontiguousarray(mesh.triangles, dtype=np.float32))
    caster._camera_tables = (mesh, tables)
    return tables


def render_camera(caster: RayCaster, mesh: CityMesh, position: np.ndarray, quat_xyzw: np.ndarray,
                  spec: CameraSpec, step: int = 1) -> CameraFrame:
    """Render the city seen from a body pose through `spec` (see the module docstring)."""
    return _render(caster, mesh, position, quat_xyzw, spec, int(step), all_rays=False)


def _render(caster: RayCaster, mesh: CityMesh, position: np.ndarray, quat_xyzw: np.ndarray, spec: CameraSpec,
            step: int, all_rays: bool) -> CameraFrame:
    """`render_camera`; `all_rays=True` casts every pixel's ray with Embree (the reference the tests compare
    the rasterise-then-verify path of `raster.py` with); `step` > 1 always casts its block rays."""
    if caster.n_triangles != mesh.n_triangles:
        raise ValueError("the ray caster was built from a different mesh")
    origin, r_wc = camera_pose_world(position, quat_xyzw, spec)
    unit_cam = _unit_rays_cam(spec, step)
    n = len(unit_cam)
    dirs = np.empty((n, 3), np.float32)
    tri_label, tri_tint, tris = _mesh_tables(caster, mesh)
    if step == 1 and not all_rays:
        _camera_dirs_world(unit_cam, r_wc, dirs)
        ids, z1, z2, e1, e2, za = raster_nearest(
            tris, origin, np.ascontiguousarray(r_wc.T), float(spec.fx), float(spec.fy), float(spec.cx),
            float(spec.cy), float(spec.near), spec.height, spec.width, EDGE_EPS_PX, TIE_REL)
        xs = (np.arange(spec.width) + 0.5 - spec.cx) / spec.fx
        ys = (np.arange(spec.height) + 0.5 - spec.cy) / spec.fy
        tri = np.empty(n, np.int32)
        dist = np.empty(n, np.float32)
        todo = certain_hits(ids, z1, z2, e1, e2, za, xs, ys, float(spec.near), float(spec.far), TIE_REL, tri, dist)
        if len(todo):
            sub = np.ascontiguousarray(unit_cam[todo])
            starts, sub_dirs = np.empty((len(todo), 3), np.float32), np.empty((len(todo), 3), np.float32)
            _camera_rays_world(sub, r_wc, origin, float(spec.near), starts, sub_dirs)
            dist[todo], tri[todo] = caster.cast(starts, sub_dirs, max_distance=spec.far, normalized=True)
    else:
        starts = np.empty((n, 3), np.float32)
        _camera_rays_world(unit_cam, r_wc, origin, float(spec.near), starts, dirs)
        dist, tri = caster.cast(starts, dirs, max_distance=spec.far, normalized=True)
    rgb = np.empty((n, 3), np.uint8)
    depth = np.empty(n, np.float32)
    label_img = np.empty(n, np.uint8)
    _shade_pixels(dist, tri, dirs, unit_cam, float(spec.near), tri_label, tri_tint, caster.normals,
                  L.palette().astype(np.float32), SUN_DIR, AMBIENT, DIFFUSE, FOG_DISTANCE, HORIZON_RGB, ZENITH_RGB,
                  rgb, depth, label_img)
    hh, ww = (spec.height, spec.width) if step == 1 else spec.pixel_rays_cam(step).shape[:2]
    rgb, depth_img, label_img = rgb.reshape(hh, ww, 3), depth.reshape(hh, ww), label_img.reshape(hh, ww)
    if step > 1:
        rgb, depth_img, label_img = (_upsample(a, step, spec.height, spec.width) for a in (rgb, depth_img, label_img))
    return CameraFrame(rgb=rgb, depth=depth_img, labels=label_img, origin_world=origin, R_world_cam=r_wc)


def _upsample(a: np.ndarray, step: int, height: int, width: int) -> np.ndarray:
    """Repeat each block sample step x step times and crop to the image size."""
    return np.repeat(np.repeat(a, step, axis=0), step, axis=1)[:height, :width]


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """(H, W, 3) uint8 RGB -> baseline JPEG bytes (Pillow, 4:2:0 subsampling)."""
    arr = np.ascontiguousarray(rgb, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGB").save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()
