"""Camera rendering by ray casting: one primary ray per pixel against the city mesh.

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

import numpy as np
from PIL import Image

from occworld_tokyo import labels as L
from occworld_tokyo.citymodel.mesh import CityMesh
from occworld_tokyo.sensors.geometry import quat_to_matrix
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
    h = (np.asarray(instances, dtype=np.uint64) * np.uint64(2654435761)) % np.uint64(1000)
    return 1.0 + INSTANCE_TINT * (h.astype(np.float32) / 500.0 - 1.0)


def sky_colour(dir_z: np.ndarray) -> np.ndarray:
    """(N,) world z of unit view rays -> (N, 3) float sky colour (horizon below, zenith straight up)."""
    t = np.sqrt(np.clip(dir_z, 0.0, 1.0))[:, None]
    return HORIZON_RGB * (1.0 - t) + ZENITH_RGB * t


def shade(label_ids: np.ndarray, inst: np.ndarray, normals: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """(N,) hit labels, instances, camera-facing unit normals (N, 3) and ranges -> (N, 3) float colours."""
    base = L.palette().astype(np.float32)[label_ids] * instance_tint(inst)[:, None]
    lambert = np.maximum(normals @ SUN_DIR.astype(np.float32), 0.0)
    lit = base * (AMBIENT + DIFFUSE * lambert)[:, None]
    fog = (1.0 - np.exp(-ranges / FOG_DISTANCE))[:, None]
    return lit * (1.0 - fog) + HORIZON_RGB.astype(np.float32) * fog


def render_camera(caster: RayCaster, mesh: CityMesh, position: np.ndarray, quat_xyzw: np.ndarray,
                  spec: CameraSpec, step: int = 1) -> CameraFrame:
    """Render the city seen from a body pose through `spec` (see the module docstring)."""
    origin, r_wc = camera_pose_world(position, quat_xyzw, spec)
    rays_cam = spec.pixel_rays_cam(step).reshape(-1, 3)
    norm = np.linalg.norm(rays_cam, axis=1)
    unit_cam = rays_cam / norm[:, None]
    z_unit = unit_cam[:, 2]  # cos of the angle to the optical axis
    dirs_w = (unit_cam @ r_wc.T).astype(np.float32)
    t_near = spec.near / z_unit  # start each ray on the near plane
    starts = (origin + dirs_w.astype(np.float64) * t_near[:, None]).astype(np.float32)
    dist, tri = caster.cast(starts, dirs_w, max_distance=spec.far)
    hit = tri >= 0
    ranges = dist.astype(np.float64) + t_near
    n = len(dirs_w)
    colour = np.empty((n, 3), dtype=np.float32)
    colour[~hit] = sky_colour(dirs_w[~hit, 2])
    idx = np.flatnonzero(hit)
    obj = mesh.tri_object[tri[idx]]
    lab = mesh.object_label[obj]
    normals = caster.facing_normals(tri[idx], dirs_w[idx])
    colour[idx] = shade(lab, mesh.object_instance[obj], normals, ranges[idx].astype(np.float32))
    depth = np.full(n, np.inf, dtype=np.float32)
    depth[idx] = (ranges[idx] * z_unit[idx]).astype(np.float32)
    label_img = np.zeros(n, dtype=np.uint8)
    label_img[idx] = lab
    hh, ww = spec.pixel_rays_cam(step).shape[:2] if step > 1 else (spec.height, spec.width)
    rgb = np.clip(colour + 0.5, 0, 255).astype(np.uint8).reshape(hh, ww, 3)
    depth_img = depth.reshape(hh, ww)
    label_img = label_img.reshape(hh, ww)
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
