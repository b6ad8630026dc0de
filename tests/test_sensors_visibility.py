"""Visibility masks: lidar DDA traversal (exact segment/voxel test) and camera depth-buffer visibility."""

from __future__ import annotations

import numpy as np
import pytest

from occworld_tokyo.grid import DEFAULT_GRID, EgoFrame
from occworld_tokyo.sensors import CameraSpec, RayCaster, camera_mask, lidar_mask, render_camera
from occworld_tokyo.sensors.synthetic import Box, box_city

G = DEFAULT_GRID
VS = np.array(G.voxel_size)


def segment_hits_voxel(a: np.ndarray, b: np.ndarray, ijk: np.ndarray) -> bool:
    """Exact slab test: does the segment a -> b (ego metres) touch voxel ijk's box?"""
    lo = G.lower + ijk * VS
    hi = lo + VS
    t0, t1 = 0.0, 1.0
    d = b - a
    for ax in range(3):
        if abs(d[ax]) < 1e-12:
            if not lo[ax] <= a[ax] <= hi[ax]:
                return False
            continue
        ta, tb = sorted(((lo[ax] - a[ax]) / d[ax], (hi[ax] - a[ax]) / d[ax]))
        t0, t1 = max(t0, ta), min(t1, tb)
    return t0 <= t1 + 1e-9


def sampled_voxels(a: np.ndarray, b: np.ndarray, n: int = 20000) -> set:
    t = np.linspace(0.0, 1.0, n)[:, None]
    idx, inside = G.to_index(a + t * (b - a))
    return set(map(tuple, idx[inside]))


@pytest.mark.parametrize("end", [(10.05, 0.13, 1.6), (-23.3, 17.9, 33.2), (5.1, -38.7, -1.2), (0.33, 0.21, 140.0)])
def test_lidar_mask_is_exactly_the_voxels_on_the_segment(end):
    origin = np.array([0.1, 0.1, 1.5])
    end = np.array(end)
    mask = lidar_mask(origin, end[None], G)
    assert mask.shape == (200, 200, 121) and mask.dtype == bool
    marked = set(map(tuple, np.argwhere(mask)))
    hit_idx, inside = G.to_index(end[None])
    assert inside[0] and tuple(hit_idx[0]) in marked  # the hit voxel
    assert sampled_voxels(origin, end) <= marked  # every voxel the segment passes through
    assert all(segment_hits_voxel(origin, end, np.array(v)) for v in marked)  # and nothing else
    # nothing behind the hit: voxels on the ray's continuation past the hit voxel are unmarked
    beyond = sampled_voxels(end + 0.01 * (end - origin) / np.linalg.norm(end - origin),
                            end + 30.0 * (end - origin) / np.linalg.norm(end - origin))
    assert not (beyond - {tuple(hit_idx[0])}) & marked


def test_lidar_mask_rays_enter_from_above_and_stop_at_the_grid_edge():
    # a drone above the grid top (149.25 m) looking straight down: the whole column is traversed
    mask = lidar_mask(np.array([0.1, 0.1, 170.0]), np.array([[0.1, 0.1, 0.3]]), G)
    assert mask[100, 100, 1:].all() and mask.sum() == 120  # z 0.3 is level 1; level 0 lies below the hit
    # a ray leaving the grid sideways marks voxels up to the edge, nothing wraps around
    far = lidar_mask(np.array([0.1, 0.1, 1.5]), np.array([[100.1, 0.1, 1.5]]), G)
    assert far[100:, 100, 2].all() and far.sum() == 100


def test_lidar_mask_misses_traverse_to_max_range():
    origin = np.array([0.1, 0.1, 1.5])
    up = lidar_mask(origin, np.zeros((0, 3)), G, miss_dirs_ego=np.array([[0.0, 0.0, 1.0]]), max_range=50.0)
    # 1.5 m .. 51.5 m above ground: levels 2 .. 42
    assert up[100, 100, 2:43].all() and up.sum() == 41
    with pytest.raises(ValueError):
        lidar_mask(origin, np.zeros((0, 3)), G, miss_dirs_ego=np.array([[0.0, 0.0, 1.0]]))


@pytest.fixture(scope="module")
def wall_scene():
    # a wall across the whole view: front face at x = 10.1 m, 2 m thick, higher than the grid
    mesh = box_city([Box((10.1, -200.0, 0.0), (12.1, 200.0, 300.0))], ground_z=0.0)
    caster = RayCaster(mesh)
    spec = CameraSpec(width=400, height=225, fx=316.6, fy=316.6, cx=200.0, cy=112.5)
    pos, q = np.array([0.0, 0.0, 1.5]), np.array([0.0, 0.0, 0.0, 1.0])
    frame = EgoFrame(0.0, 0.0, 0.0, ground_z=0.0)
    cam = render_camera(caster, mesh, pos, q, spec)
    return mesh, caster, spec, pos, q, frame, cam


def test_camera_mask_sees_nothing_behind_a_wall_and_nothing_under_the_ground(wall_scene):
    mesh, caster, spec, pos, q, frame, cam = wall_scene
    mask = camera_mask(cam.depth, pos, q, frame, spec, G)
    assert mask.shape == (200, 200, 121) and mask.dtype == bool
    x_lo = G.lower[0] + np.arange(200) * VS[0]
    behind = x_lo >= 10.1  # voxels whose near x face is at or behind the wall's front face
    assert not mask[behind].any()
    assert mask[125].any()  # x 10.0 .. 10.4 holds the wall face: seen
    assert not mask[:100].any()  # behind the camera
    assert not mask[:, :, 0].any()  # level 0 (-2 .. -0.75 m) lies under the ground plane
    i5 = int((5.0 + 40) / 0.4)
    assert mask[i5, 100, 1:4].all()  # open air and ground 5 m ahead, on the optical axis


def test_camera_mask_agrees_with_dense_camera_ray_traversal(wall_scene):
    mesh, caster, spec, pos, q, frame, cam = wall_scene
    mask = camera_mask(cam.depth, pos, q, frame, spec, G)
    # reference: traverse one ray per pixel (4x supersampled render) from the camera to its surface
    fine = CameraSpec(width=1600, height=900, fx=1266.4, fy=1266.4, cx=800.0, cy=450.0)
    f = render_camera(caster, mesh, pos, q, fine)
    rays = fine.pixel_rays_cam().reshape(-1, 3)
    d = f.depth.reshape(-1)
    ok = np.isfinite(d)
    p_cam = rays[ok] * d[ok, None]
    r_wc = f.R_world_cam
    ends = frame.world_to_ego(f.origin_world + p_cam @ r_wc.T)
    ref = lidar_mask(frame.world_to_ego(f.origin_world), ends, G)
    inter = (mask & ref).sum()
    union = (mask | ref).sum()
    print("IoU", inter / union)
    assert inter / union > 0.97, inter / union


def test_camera_mask_rejects_a_depth_of_the_wrong_size(wall_scene):
    mesh, caster, spec, pos, q, frame, cam = wall_scene
    with pytest.raises(ValueError):
        camera_mask(cam.depth[:-1], pos, q, frame, spec, G)


def test_camera_mask_from_a_yawed_pitched_drone_matches_dense_traversal():
    from occworld_tokyo.sensors import default_camera

    mesh = box_city([Box((15.0, -10.0, 30.0), (30.0, 8.0, 75.0)), Box((5.0, 12.0, 30.0), (12.0, 20.0, 50.0))],
                    ground_z=30.0)
    caster = RayCaster(mesh)
    spec = default_camera("drone")
    yaw = np.deg2rad(20.0)
    pos, q = np.array([-3.0, 1.0, 60.0]), np.array([0.0, 0.0, np.sin(yaw / 2), np.cos(yaw / 2)])
    frame = EgoFrame(-3.0, 1.0, yaw, ground_z=30.0)
    f = render_camera(caster, mesh, pos, q, spec)
    mask = camera_mask(f.depth, pos, q, frame, spec, G)
    rays = spec.pixel_rays_cam().reshape(-1, 3)
    d = f.depth.reshape(-1)
    ok = np.isfinite(d)
    ends = frame.world_to_ego(f.origin_world + (rays[ok] * d[ok, None]) @ f.R_world_cam.T)
    ref = lidar_mask(frame.world_to_ego(f.origin_world), ends, G)
    assert (mask & ref).sum() / (mask | ref).sum() > 0.97
    # the surface voxel of a bottom-centre pixel's point is marked, the voxel 3 m behind it along the ray is not
    centre = np.array([0.0, (880.5 - 450.0) / 1266.4, 1.0]) * f.depth[880, 800]
    p = frame.world_to_ego(f.origin_world + f.R_world_cam @ centre)
    behind = frame.world_to_ego(f.origin_world + f.R_world_cam @ (centre * (1 + 3.0 / np.linalg.norm(centre))))
    (ip,), (ib,) = G.to_index(p[None])[0], G.to_index(behind[None])[0]
    assert mask[tuple(ip)] and not mask[tuple(ib)]
