"""The fast camera path (rasterise, then Embree only where the raster is numerically ambiguous) against the
reference that casts every pixel's ray with Embree.

Documented tolerance (occworld_tokyo/sensors/raster.py, docs/benchmarks.md): labels and sky/no-sky identical
in every pixel; depth within 1e-4 relative (float64 plane intersection vs Embree's float32); RGB within 1 level
in at most 1e-4 of the pixels (fog / Lambert rounding of those depths).
"""

from __future__ import annotations

import numpy as np
import pytest

from occworld_tokyo import labels as L
from occworld_tokyo.sensors import CameraSpec, RayCaster, default_camera, render_camera
from occworld_tokyo.sensors.camera import _render
from occworld_tokyo.sensors.synthetic import Box, box_city, random_box_city


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([0.0, 0.0, np.sin(yaw / 2), np.cos(yaw / 2)])


def pitch_yaw_quat(pitch_down_deg: float, yaw_deg: float) -> np.ndarray:
    """Body quaternion: yaw about z, then pitch the nose down (right-hand rotation about body y)."""
    p, y = np.deg2rad(pitch_down_deg) / 2, np.deg2rad(yaw_deg) / 2
    qz = np.array([0.0, 0.0, np.sin(y), np.cos(y)])
    qy = np.array([0.0, np.sin(p), 0.0, np.cos(p)])
    x1, y1, z1, w1 = qz
    x2, y2, z2, w2 = qy
    return np.array([w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2, w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                     w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2, w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2])


@pytest.fixture(scope="module")
def boxes_scene():
    mesh = box_city([
        Box((20.0, -5.0, 0.0), (30.0, 5.0, 40.0), L.BUILDING),
        Box((30.0, -5.0, 0.0), (38.0, 5.0, 40.0), L.BRIDGE),  # shares the face x = 30 (coincident triangles)
        Box((60.0, 30.0, 0.0), (80.0, 60.0, 25.0), L.VEGETATION),
        Box((45.0, -12.0, 0.0), (45.03, -11.97, 12.0), L.CITY_FURNITURE),  # 3 cm pole: ~0.8 px at 45 m
        Box((70.0, -20.0, 0.0), (70.008, -19.992, 15.0), L.CITY_FURNITURE),  # 8 mm pole: ~0.15 px wide
        Box((0.15, 0.1, 9.9), (0.5, 0.2, 10.0), L.OTHER),  # straddles the near plane (x = 0.2) of pose 0
        Box((1500.0, -400.0, 0.0), (1520.0, 400.0, 300.0), L.BUILDING),  # partly beyond `far` (see spec)
    ])
    return mesh, RayCaster(mesh)


def assert_within_tolerance(ref, fast):
    assert np.array_equal(ref.labels, fast.labels), f"{np.count_nonzero(ref.labels != fast.labels)} labels differ"
    assert np.array_equal(np.isinf(ref.depth), np.isinf(fast.depth))
    hit = np.isfinite(ref.depth)
    rel = np.abs(fast.depth[hit].astype(np.float64) - ref.depth[hit]) / ref.depth[hit]
    assert rel.max(initial=0.0) <= 1e-4
    drgb = np.abs(fast.rgb.astype(np.int16) - ref.rgb.astype(np.int16)).max(axis=2)
    assert drgb.max() <= 1 and np.count_nonzero(drgb) <= 1e-4 * drgb.size


POSES = [  # (position, quaternion, spec)
    (np.array([0.0, 0.0, 10.0]), yaw_quat(0.0), default_camera("rover")),
    (np.array([-15.0, 8.0, 45.0]), yaw_quat(np.deg2rad(-12.0)), default_camera("drone")),
    (np.array([5.0, -25.0, 1.2]), yaw_quat(np.deg2rad(55.0)), CameraSpec(far=1510.0)),
    (np.array([40.0, -14.0, 30.0]), pitch_yaw_quat(50.0, 20.0), default_camera("rover")),
]


@pytest.mark.parametrize("k", range(len(POSES)))
def test_fast_render_equals_full_ray_render_on_boxes(boxes_scene, k):
    mesh, caster = boxes_scene
    pos, q, spec = POSES[k]
    ref = _render(caster, mesh, pos, q, spec, 1, all_rays=True)
    fast = render_camera(caster, mesh, pos, q, spec)
    assert_within_tolerance(ref, fast)


def test_scene_has_sub_pixel_objects_a_lattice_shortcut_would_miss(boxes_scene):
    """Makes the equality above meaningful: the thin poles are seen, some only in scattered pixels, and
    interpolating every other pixel from its lattice neighbours (the obvious shortcut) changes labels."""
    mesh, caster = boxes_scene
    pos, q, spec = POSES[0]
    ref = _render(caster, mesh, pos, q, spec, 1, all_rays=True)
    poles = ref.labels == L.CITY_FURNITURE
    assert 20 < np.count_nonzero(poles) < 2000
    lat = ref.labels.copy()
    lat[:, 1:-1:2] = np.where(ref.labels[:, 0:-2:2] == ref.labels[:, 2::2], ref.labels[:, 0:-2:2], lat[:, 1:-1:2])
    assert np.count_nonzero(lat != ref.labels) > 0


def test_fast_render_on_a_random_box_city_and_is_deterministic():
    mesh = random_box_city(150, half_size=200.0, seed=1)
    caster = RayCaster(mesh)
    spec = default_camera("drone")
    pos, q = np.array([10.0, -30.0, 80.0]), yaw_quat(0.7)
    ref = _render(caster, mesh, pos, q, spec, 1, all_rays=True)
    fast = render_camera(caster, mesh, pos, q, spec)
    assert_within_tolerance(ref, fast)
    again = render_camera(caster, mesh, pos, q, spec)
    assert fast.rgb.tobytes() == again.rgb.tobytes() and fast.depth.tobytes() == again.depth.tobytes()
    assert fast.labels.tobytes() == again.labels.tobytes()
