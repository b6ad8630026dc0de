"""Lidar: ranges, ego-frame points, labels/instances, misses, intensity and determinism on hand-built scenes."""

from __future__ import annotations

import numpy as np
import pytest

from occworld_tokyo import labels as L
from occworld_tokyo.grid import DEFAULT_GRID, EgoFrame
from occworld_tokyo.sensors import LidarSpec, RayCaster, default_lidar, scan_lidar
from occworld_tokyo.sensors.lidar import ALPHA_PER_M, REFLECTIVITY
from occworld_tokyo.sensors.synthetic import Box, box_city


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([0.0, 0.0, np.sin(yaw / 2), np.cos(yaw / 2)])


@pytest.fixture(scope="module")
def scene():
    # ground (road) at z = 40 m (a western-Tokyo-like elevation), one building x in [10, 20], y in [-5, 5]
    mesh = box_city([Box((10.0, -5.0, 40.0), (20.0, 5.0, 70.0))], ground_z=40.0)
    return mesh, RayCaster(mesh)


SMALL = LidarSpec(beams=3, columns=4, vertical_fov_deg=(-10.0, 10.0), intensity_noise_std=0.0)


def test_ray_at_box_face_gives_range_point_label_and_instance(scene):
    mesh, caster = scene
    frame = EgoFrame(0.0, 0.0, 0.0, ground_z=40.0)
    scan = scan_lidar(caster, mesh, np.array([0.0, 0.0, 41.0]), yaw_quat(0.0), frame, SMALL, np.random.default_rng(0))
    # beam 0 (+10 deg): only column 0 hits (the wall); beam 1 (0 deg): column 0 hits the wall;
    # beam 2 (-10 deg): all four columns hit the ground at 1 / tan(10 deg) m. Sky rays are dropped.
    assert len(scan) == 6 <= SMALL.n_rays
    assert list(scan.ring) == [0, 1, 2, 2, 2, 2]
    level = scan.points[scan.ring == 1][0]
    np.testing.assert_allclose(level[:3], [10.0, 0.0, 1.0], atol=1e-4)
    up = scan.points[scan.ring == 0][0]
    np.testing.assert_allclose(up[:3], [10.0, 0.0, 1.0 + 10.0 * np.tan(np.deg2rad(10.0))], atol=1e-4)
    ground = scan.points[scan.ring == 2]
    d = 1.0 / np.tan(np.deg2rad(10.0))
    np.testing.assert_allclose(ground[:, :3], [[d, 0, 0], [0, d, 0], [-d, 0, 0], [0, -d, 0]], atol=1e-4)
    assert list(scan.labels) == [L.BUILDING, L.BUILDING] + [L.ROAD] * 4
    assert list(scan.instances) == [1, 1, 2, 2, 2, 2]  # box = instance 1, ground = instance 2
    np.testing.assert_allclose(scan.origin_ego, [0.0, 0.0, 1.0])
    # a face-on hit: intensity = 255 * rho * cos(0) * exp(-2 alpha r)
    assert level[3] == pytest.approx(255 * REFLECTIVITY[L.BUILDING] * np.exp(-2 * ALPHA_PER_M * 10.0), rel=1e-4)
    # the grazing ground hit (cos = sin 10 deg) is dimmer per unit reflectivity than the face-on wall hit
    assert ground[0, 3] / REFLECTIVITY[L.ROAD] < level[3] / REFLECTIVITY[L.BUILDING]


def test_points_are_in_the_yawed_ego_frame_and_index_the_grid(scene):
    mesh, caster = scene
    # agent south-west of the box, heading north (yaw 90 deg): the wall y = -5 is straight ahead
    pos = np.array([15.0, -25.0, 41.5])
    frame = EgoFrame(15.0, -25.0, np.pi / 2, ground_z=40.0)
    spec = LidarSpec(beams=1, columns=8, vertical_fov_deg=(0.0, 0.0), intensity_noise_std=0.0)
    scan = scan_lidar(caster, mesh, pos, yaw_quat(np.pi / 2), frame, spec, np.random.default_rng(0))
    assert len(scan) == 1 and scan.column[0] == 0
    np.testing.assert_allclose(scan.points[0, :3], [20.0, 0.0, 1.5], atol=1e-4)
    idx, inside = DEFAULT_GRID.to_index(scan.points[:, :3])
    assert inside.all()
    assert tuple(idx[0]) == (150, 100, 2)  # x 20 -> (20 + 40) / 0.4, y 0 -> 100, z 1.5 -> (1.5 + 2) / 1.25


def test_max_and_min_range_drop_returns(scene):
    mesh, caster = scene
    frame = EgoFrame(0.0, 0.0, 0.0, ground_z=40.0)
    pos, q = np.array([0.0, 0.0, 41.0]), yaw_quat(0.0)
    far = LidarSpec(beams=1, columns=1, vertical_fov_deg=(0.0, 0.0), max_range=9.0)
    assert len(scan_lidar(caster, mesh, pos, q, frame, far, np.random.default_rng(0))) == 0
    near = LidarSpec(beams=1, columns=1, vertical_fov_deg=(0.0, 0.0), min_range=11.0, max_range=50.0)
    assert len(scan_lidar(caster, mesh, pos, q, frame, near, np.random.default_rng(0))) == 0
    ok = LidarSpec(beams=1, columns=1, vertical_fov_deg=(0.0, 0.0), max_range=11.0)
    assert len(scan_lidar(caster, mesh, pos, q, frame, ok, np.random.default_rng(0))) == 1


def test_misses_are_reported_as_directions(scene):
    mesh, caster = scene
    frame = EgoFrame(0.0, 0.0, 0.0, ground_z=40.0)
    scan = scan_lidar(caster, mesh, np.array([0.0, 0.0, 41.0]), yaw_quat(0.0), frame, SMALL, np.random.default_rng(0))
    assert len(scan.miss_dirs_ego) == SMALL.n_rays - len(scan)
    assert np.all(scan.miss_dirs_ego[:, 2] >= -1e-6)  # all misses look level or up


def test_default_specs_scan_counts_and_determinism(scene):
    mesh, caster = scene
    frame = EgoFrame(0.0, 0.0, 0.3, ground_z=40.0)
    pos, q = np.array([0.0, 0.0, 41.2]), yaw_quat(0.3)
    spec = LidarSpec(range_noise_std=0.02)
    a = scan_lidar(caster, mesh, pos, q, frame, spec, np.random.default_rng(7))
    b = scan_lidar(caster, mesh, pos, q, frame, spec, np.random.default_rng(7))
    c = scan_lidar(caster, mesh, pos, q, frame, spec, np.random.default_rng(8))
    assert 0 < len(a) <= spec.beams * spec.columns
    assert a.points.dtype == np.float32 and a.points.shape[1] == 4
    assert a.labels.dtype == np.uint8 and a.instances.dtype == np.int32
    np.testing.assert_array_equal(a.points, b.points)
    assert not np.array_equal(a.points, c.points)
    # range noise is small: every point still lies on its surface to within a few centimetres
    on_ground = a.labels == L.ROAD
    assert np.abs(a.points[on_ground, 2]).max() < 0.2


def test_drone_lidar_sees_ground_and_rooftops_from_altitude():
    mesh = box_city([Box((-10.0, -10.0, 0.0), (10.0, 10.0, 20.0), L.BUILDING)])
    caster = RayCaster(mesh)
    spec = default_lidar("drone")
    assert spec.n_rays >= 65_000
    for altitude in (30.0, 120.0):
        frame = EgoFrame(25.0, 0.0, 0.0, ground_z=0.0)
        scan = scan_lidar(caster, mesh, np.array([25.0, 0.0, altitude]), yaw_quat(0.0), frame, spec,
                          np.random.default_rng(0))
        idx, inside = DEFAULT_GRID.to_index(scan.points[:, :3])
        roof = (scan.labels == L.BUILDING) & (np.abs(scan.points[:, 2] - 20.0) < 1e-3)
        assert roof.sum() > 100, altitude
        assert (inside & (scan.labels == L.ROAD)).sum() > 10_000, altitude


def test_layered_caster_equals_a_caster_of_the_concatenated_mesh():
    """Moving agents get their own small Embree scene per frame over the city's (built once): the hits must be
    those of one scene built from city + agents, including agents in front of, behind and inside buildings'
    shadows, and max_distance."""
    from occworld_tokyo.citymodel.mesh import CityMesh

    rng = np.random.default_rng(0)
    city = box_city([Box((10, -5, 0), (20, 5, 15)), Box((-30, 10, 0), (-20, 30, 40)), Box((0, 40, 0), (8, 60, 25))])
    agents = box_city([Box((c[0], c[1], 0.0), (c[0] + 4.5, c[1] + 1.8, 1.6), L.VEHICLE)
                       for c in rng.uniform(-50, 50, (40, 2))], ground_half_size=None)
    base = RayCaster(city)
    layered = RayCaster.layered(base, agents)
    whole = RayCaster(CityMesh.concatenate([city, agents]))
    assert layered.n_triangles == whole.n_triangles and np.array_equal(layered.normals, whole.normals)
    origins = np.column_stack([rng.uniform(-60, 60, (20000, 2)), rng.uniform(0.5, 50, 20000)])
    dirs = rng.normal(size=(20000, 3))
    for max_distance in (None, 30.0):
        d1, t1 = layered.cast(origins, dirs, max_distance=max_distance)
        d2, t2 = whole.cast(origins, dirs, max_distance=max_distance)
        same = t1 == t2
        assert same.mean() > 0.999  # only exact ties (a box resting on the ground, shared edges) may differ
        np.testing.assert_allclose(d1, d2, rtol=1e-6)
        hits_agents = (t1 >= city.n_triangles).sum()
        assert hits_agents > 100  # the overlay is really hit (226 rays here)
