"""Camera: image layout (box in the centre, sky on top), depth, class colour, K/T_body_cam projection, JPEG."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from occworld_tokyo import labels as L
from occworld_tokyo.sensors import CameraSpec, RayCaster, default_camera, encode_jpeg, render_camera
from occworld_tokyo.rotations import invert_rigid, unit_quat_to_matrix as quat_to_matrix
from occworld_tokyo.sensors.synthetic import Box, box_city


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([0.0, 0.0, np.sin(yaw / 2), np.cos(yaw / 2)])


@pytest.fixture(scope="module")
def scene():
    mesh = box_city([Box((20.0, -5.0, 0.0), (30.0, 5.0, 40.0), L.BUILDING),
                     Box((60.0, 30.0, 0.0), (80.0, 60.0, 25.0), L.VEGETATION)])
    return mesh, RayCaster(mesh)


@pytest.fixture(scope="module")
def rover_frame(scene):
    mesh, caster = scene
    return render_camera(caster, mesh, np.array([0.0, 0.0, 10.0]), yaw_quat(0.0), default_camera("rover"))


def nearest_palette_chroma(rgb: np.ndarray) -> int:
    """Label id whose palette colour has the closest chromaticity (colour direction) to rgb."""
    pal = L.palette().astype(np.float64)[1:]
    c = rgb.astype(np.float64)
    sims = pal @ c / (np.linalg.norm(pal, axis=1) * np.linalg.norm(c) + 1e-9)
    return int(np.argmax(sims)) + 1


def test_box_in_front_fills_the_centre_with_its_class_colour_and_depth(rover_frame):
    f = rover_frame
    assert f.rgb.shape == (900, 1600, 3) and f.rgb.dtype == np.uint8
    assert f.depth.shape == (900, 1600) and f.depth.dtype == np.float32
    centre = (450, 800)
    assert f.labels[centre] == L.BUILDING
    # camera mounted 0.1 m ahead of the body origin: the face x = 20 is 19.9 m along the optical axis
    assert f.depth[centre] == pytest.approx(19.9, abs=1e-3)
    assert nearest_palette_chroma(f.rgb[centre]) == L.BUILDING
    # the whole face is at one optical depth (a fronto-parallel plane)
    face = f.labels == L.BUILDING
    assert np.allclose(f.depth[face], 19.9, atol=1e-3)


def test_sky_on_top_ground_at_the_bottom(rover_frame):
    f = rover_frame
    top, bottom = f.labels[0], f.labels[-1]
    assert (top[:200] == 0).all() and np.isinf(f.depth[0, :200]).all()
    sky = f.rgb[0, :200].astype(int)
    assert (sky[:, 2] > sky[:, 0]).all()  # bluish
    assert (bottom[:300] == L.ROAD).all() and (bottom[-300:] == L.ROAD).all()  # the box hides the middle
    # ground straight below the image's bottom edge: depth = 10 m height / tan(angle below the axis)
    v = 899.5
    angle = np.arctan((v - 450.0) / 1266.4)
    assert f.depth[-1, 50] == pytest.approx(10.0 / np.tan(angle), rel=1e-3)


def test_shading_varies_with_surface_orientation(scene):
    mesh, caster = scene
    # look at the box corner diagonally: two walls with different normals, different brightness
    f = render_camera(caster, mesh, np.array([5.0, -25.0, 10.0]), yaw_quat(np.deg2rad(55.0)), default_camera("rover"))
    bld = f.labels == L.BUILDING
    values = np.unique(f.rgb[bld].sum(axis=1) // 20)
    assert len(values) >= 2


def test_known_world_points_project_where_the_renderer_put_them(scene):
    mesh, caster = scene
    spec = default_camera("drone")  # pitched down 30 deg, mounted off the body origin
    pos, q = np.array([-15.0, 8.0, 45.0]), yaw_quat(np.deg2rad(-12.0))
    f = render_camera(caster, mesh, pos, q, spec)
    r_wb = quat_to_matrix(q)
    t_cam_body = invert_rigid(spec.T_body_cam)
    rng = np.random.default_rng(3)
    # points on the ground in front and on the building's front face and roof
    pts = np.concatenate([
        np.column_stack([rng.uniform(20, 60, 40), rng.uniform(-20, 20, 40), np.zeros(40)]),
        np.column_stack([np.full(20, 20.0), rng.uniform(-4.5, 4.5, 20), rng.uniform(1, 39, 20)]),
        np.column_stack([rng.uniform(20.5, 29.5, 20), rng.uniform(-4.5, 4.5, 20), np.full(20, 40.0)]),
    ])
    checked = 0
    for p in pts:
        p_body = r_wb.T @ (p - pos)
        p_cam = t_cam_body[:3, :3] @ p_body + t_cam_body[:3, 3]
        uvw = spec.K @ p_cam
        u, v = uvw[0] / uvw[2], uvw[1] / uvw[2]
        if not (2 <= u < spec.width - 2 and 2 <= v < spec.height - 2) or p_cam[2] <= 0:
            continue
        d = f.depth[int(v), int(u)]
        if d < p_cam[2] - 0.5:  # occluded by something nearer (the building hides some ground)
            continue
        checked += 1
        assert d == pytest.approx(p_cam[2], rel=2e-3), (p, u, v)
        expected = L.ROAD if p[2] == 0 else L.BUILDING
        assert f.labels[int(v), int(u)] == expected
    assert checked >= 40


def test_intrinsics_and_meta():
    spec = default_camera("rover")
    np.testing.assert_allclose(spec.K, [[1266.4, 0, 800], [0, 1266.4, 450], [0, 0, 1]])
    # optical axis (camera z) = body forward, camera x = body right (-y), camera y = body down (-z)
    np.testing.assert_allclose(spec.T_body_cam[:3, :3], [[0, 0, 1], [-1, 0, 0], [0, -1, 0]], atol=1e-12)
    drone = default_camera("drone")
    axis = drone.T_body_cam[:3, 2]
    assert np.rad2deg(np.arcsin(-axis[2])) == pytest.approx(30.0)  # looks 30 deg below the horizon
    meta = drone.to_dict()
    assert meta["intrinsics"]["fx"] == 1266.4 and "OpenCV" in meta["camera_axes"]
    assert np.asarray(meta["extrinsics"]["T_body_cam"]).shape == (4, 4)


def test_near_plane_and_step_preview(scene):
    mesh, caster = scene
    spec = CameraSpec(near=35.0)
    f = render_camera(caster, mesh, np.array([0.0, 0.0, 10.0]), yaw_quat(0.0), spec)
    assert f.labels[450, 800] == 0  # the box (20..30 m) lies before the near plane: sky behind it
    coarse = render_camera(caster, mesh, np.array([0.0, 0.0, 10.0]), yaw_quat(0.0), CameraSpec(), step=4)
    assert coarse.rgb.shape == (900, 1600, 3) and coarse.labels[450, 800] == L.BUILDING


def test_encode_jpeg_roundtrip(rover_frame):
    data = encode_jpeg(rover_frame.rgb, quality=90)
    assert data[:2] == b"\xff\xd8"
    img = np.asarray(Image.open(io.BytesIO(data)))
    assert img.shape == (900, 1600, 3)
    assert np.abs(img.astype(int) - rover_frame.rgb.astype(int)).mean() < 3.0
