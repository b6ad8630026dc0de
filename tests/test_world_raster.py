"""Column-centre rasteriser against brute force, and the numba engine against the numpy reference engine."""

from __future__ import annotations

import numpy as np

from occworld_tokyo import labels as L
from occworld_tokyo.citymodel.mesh import Fill
from occworld_tokyo.world import build_voxel_world
from occworld_tokyo.world.primitives import MeshBuilder, box_triangles, heightfield_triangles, quad_triangles
from occworld_tokyo.world.raster import ColumnLattice, sample_triangles


def brute_force(tri: np.ndarray, lat: ColumnLattice) -> dict[tuple[int, int], float]:
    """(triangle, column) -> z by testing every column centre with explicit barycentric coordinates."""
    cx, cy = np.meshgrid(lat.centers_x(), lat.centers_y(), indexing="ij")
    out = {}
    for t, (a, b, c) in enumerate(np.asarray(tri, dtype=np.float64)):
        det = (b[0] - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (b[1] - a[1])
        if abs(det) < 1e-9 * lat.dx * lat.dy:
            continue
        l1 = ((cx - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (cy - a[1])) / det
        l2 = ((b[0] - a[0]) * (cy - a[1]) - (cx - a[0]) * (b[1] - a[1])) / det
        inside = (l1 >= 1e-7) & (l2 >= 1e-7) & (l1 + l2 <= 1 - 1e-7)  # strictly inside: robust to ties
        for i, j in zip(*np.nonzero(inside)):
            out[(t, int(i * lat.ny + j))] = a[2] + l1[i, j] * (b[2] - a[2]) + l2[i, j] * (c[2] - a[2])
    return out


def test_sampler_matches_brute_force():
    rng = np.random.default_rng(7)
    lat = ColumnLattice(x0=-3.0, y0=5.0, dx=0.4, dy=0.4, nx=60, ny=45)
    tri = np.concatenate([rng.uniform([-6, 2, 40], [23, 25, 90], size=(40, 3, 3)),
                          rng.uniform([0, 8, 0], [3, 11, 5], size=(20, 3, 3))])  # big, small, some off-lattice
    got = {}
    for t, col, z in sample_triangles(tri, lat, chunk=5000):  # small chunks: exercise the chunking
        for a, b, c in zip(t.tolist(), col.tolist(), z.tolist()):
            got[(a, b)] = c
    want = brute_force(tri, lat)
    assert want and set(want) <= set(got)
    assert len(got) - len(want) <= 0.01 * len(want)  # only centres on edges may differ
    assert max(abs(got[k] - v) for k, v in want.items()) < 1e-3
    assert all(0 <= c < lat.n_columns for _, c in got)


def random_scene(seed: int) -> MeshBuilder:
    rng = np.random.default_rng(seed)
    mb = MeshBuilder()
    relief = lambda x, y: 20.0 + 0.05 * x + 2.0 * np.sin(y / 13.0)  # noqa: E731
    # dem over the west half only: the east half gets the estimated ground
    mb.add(heightfield_triangles(np.linspace(0, 60, 13), np.linspace(0, 120, 25), relief), L.TERRAIN, Fill.TERRAIN)
    for n in range(40):
        x, y = rng.uniform(2, 110, 2)
        w, d = rng.uniform(2, 15, 2)
        base = relief(x, y) - 0.3
        mb.add(box_triangles((x, y, base), (x + w, y + d, base + rng.uniform(3, 60))),
               [L.BUILDING, L.BRIDGE, L.VEGETATION][n % 3], Fill.SOLID)
    for n in range(6):
        x = rng.uniform(0, 100)
        mb.add(quad_triangles((x, x + 8), (0, 120), relief(x, 0) + 0.2), L.ROAD, Fill.SURFACE)
    tilted = box_triangles((30.3, 30.3, 25.0), (44.7, 41.1, 40.0))
    tilted[..., 2] += 0.3 * (tilted[..., 0] - 30.0)  # a sheared solid (sloped roof and floor)
    mb.add(tilted, L.BUILDING, Fill.SOLID)
    mb.add(box_triangles((70.0, 70.0, 22.0), (70.1, 70.1, 30.0)), L.CITY_FURNITURE, Fill.SOLID)  # covers no centre
    return mb


def test_numba_and_numpy_engines_identical():
    mesh = random_scene(11).build()
    a = build_voxel_world(mesh, progress=False, engine="numba")
    b = build_voxel_world(mesh, progress=False, engine="numpy")
    assert a.synthetic_ground and b.synthetic_ground
    assert np.array_equal(a.objects, b.objects)
    assert np.array_equal(a.ground, b.ground) and np.array_equal(a.top, b.top)
    present = np.unique(a.objects)
    assert len(present) == mesh.n_objects + 2  # every object (the pole too), the synthetic ground and free
    assert a.object_label[a.objects[175, 175, :]].tolist().count(L.CITY_FURNITURE) >= 1


def test_compiled_crop_equals_numpy_gather():
    mesh = random_scene(5).build()
    w = build_voxel_world(mesh, progress=False)
    rng = np.random.default_rng(1)
    for x, y, yaw in rng.uniform([-30, -30, -np.pi], [150, 150, np.pi], size=(6, 3)):
        f = w.ego_frame(x, y, yaw)
        lab, ins = w.crop(f)
        ids = w.crop_objects(f)
        assert np.array_equal(lab, w.object_label[ids]) and np.array_equal(ins, w.object_instance[ids])
    f = w.ego_frame(60.0, 60.0, 1.0)
    assert (w.crop(f)[0] != 0).sum() == (w.crop_objects(f) != 0).sum() > 0
