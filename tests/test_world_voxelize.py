"""Voxel world: hand-computable scenes (boxes, bridge, terrain, slope) and the ego crop.

Common set-up: flat TERRAIN quad at z = 50 over [0, 100]^2, so the world's z0 is
1.25 * floor((50 - 2) / 1.25) - 1.25 = 46.25 and z = 50 is the bottom of world level 3.
"""

from __future__ import annotations

import numpy as np
import pytest

from occworld_tokyo import labels as L
from occworld_tokyo.citymodel.mesh import Fill
from occworld_tokyo.grid import DEFAULT_GRID, EgoFrame
from occworld_tokyo.world import build_voxel_world
from occworld_tokyo.world.primitives import MeshBuilder, box_triangles, heightfield_triangles, quad_triangles

G = 50.0


def flat_city(*extra) -> tuple[MeshBuilder, int]:
    mb = MeshBuilder()
    t = mb.add(quad_triangles((0.0, 100.0), (0.0, 100.0), G), L.TERRAIN, Fill.TERRAIN, instance=900)
    return mb, t


def test_box_world_voxels_and_lattice():
    mb, _ = flat_city()
    b = mb.add(box_triangles((40.1, 60.1, G), (49.9, 63.9, 60.3)), L.BUILDING, Fill.SOLID, instance=77)
    w = build_voxel_world(mb.build(), progress=False)
    assert (w.x0, w.y0, w.z0) == (0.0, 0.0, 46.25)
    assert w.objects.shape == (250, 250, 12)  # top: ceil((60.3 - 46.25) / 1.25) = 12 levels
    occ = w.objects == b + 1
    # columns whose centre (0.4 i + 0.2) lies in [40.1, 49.9] -> i = 100..124; y in [60.1, 63.9] -> 150..159
    # levels overlapping [50, 60.3]: 3 .. 11
    expect = np.zeros_like(occ)
    expect[100:125, 150:160, 3:12] = True
    assert np.array_equal(occ, expect)
    assert not w.synthetic_ground
    # terrain everywhere else from level 0 to the level of z = 50 (level 3)
    assert (w.objects[:, :, :3] == 1).sum() == 250 * 250 * 3 - 0
    assert (w.labels[:, :, 3] == L.TERRAIN).sum() == 250 * 250 - 250
    assert np.allclose(w.ground, G)
    assert np.isclose(w.top[110, 155], 46.25 + 12 * 1.25) and np.isclose(w.top[10, 10], G)


@pytest.mark.parametrize("yaw", [0.0, np.pi / 2])
def test_box_in_crop_yaw(yaw):
    mb, _ = flat_city()
    b = mb.add(box_triangles((40.1, 60.1, G), (49.9, 63.9, 60.3)), L.BUILDING, Fill.SOLID, instance=77)
    w = build_voxel_world(mb.build(), progress=False)
    frame = w.ego_frame(30.0, 50.0, yaw)
    assert frame.ground_z == pytest.approx(50.75)  # z0 + 2 + 1.25 * (level(50) - 1)
    lab, ins = w.crop(frame)
    assert lab.shape == (200, 200, 121) and lab.dtype == np.uint8 and ins.dtype == np.int32
    expect = np.zeros((200, 200, 121), dtype=bool)
    if yaw == 0.0:  # building 10.1..19.9 m ahead (X), 10.1..13.9 m to the left (Y)
        expect[125:150, 125:135, 1:10] = True
    else:  # facing north: 10.1..13.9 m ahead, 10.1..19.9 m to the right (negative Y)
        expect[125:135, 50:75, 1:10] = True
    assert np.array_equal(lab == L.BUILDING, expect)
    assert np.array_equal(ins == 77, expect)
    assert (lab == L.BUILDING).sum() == 25 * 10 * 9
    # terrain: grid levels 0 and 1 (world levels 2, 3) inside the world, level 1 is the ground level
    assert (lab[:, :, 0] == L.TERRAIN).any() and (lab[:, :, 2:] == L.TERRAIN).sum() == 0
    assert set(np.unique(ins[lab == L.TERRAIN])) == {900}
    # the ego frame is also what GridSpec.to_index uses: the building's world corner maps into the box
    idx, inside = DEFAULT_GRID.to_index(frame.world_to_ego(np.array([[45.0, 62.0, 55.0]])))
    assert inside[0] and lab[tuple(idx[0])] == L.BUILDING


def test_bridge_deck_over_road_keeps_space_free():
    mb, _ = flat_city()
    road = mb.add(quad_triangles((0.0, 100.0), (45.0, 55.0), G + 0.1), L.ROAD, Fill.SURFACE, instance=5)
    deck = mb.add(box_triangles((40.0, 30.0, 58.0), (60.0, 70.0, 59.5)), L.BRIDGE, Fill.SOLID, instance=6)
    pier = mb.add(box_triangles((40.0, 30.0, G), (42.0, 32.0, 58.0)), L.BRIDGE, Fill.SOLID, instance=7)
    w = build_voxel_world(mb.build(), progress=False)
    col = w.objects[125, 125]  # x = y = 50.2: under the deck, on the road
    assert col[3] == road + 1  # road (priority over terrain) in the level of z = 50.1
    assert np.all(col[4:9] == 0)  # 51.25 .. 57.5 free under the deck
    assert np.all(col[9:11] == deck + 1)  # deck 58 .. 59.5 -> levels 9, 10
    assert np.all(col[11:] == 0)
    assert np.all(w.objects[100, 75, 3:9] == pier + 1)  # the pier stands on the ground up to 58
    assert w.is_occupied(np.array([[50.0, 50.0, 50.2], [50.0, 50.0, 55.0], [50.0, 50.0, 58.7]])).tolist() == [
        True, False, True]
    assert w.surface_height(50.0, 50.0) == pytest.approx(46.25 + 11 * 1.25)


def test_separate_overhang_keeps_gap_and_priority():
    mb, _ = flat_city()
    low = mb.add(box_triangles((10.0, 10.0, G), (20.0, 20.0, 60.0)), L.BUILDING, Fill.SOLID)
    high = mb.add(box_triangles((15.0, 10.0, 70.0), (30.0, 20.0, 80.0)), L.BUILDING, Fill.SOLID)
    road = mb.add(quad_triangles((0.0, 100.0), (14.0, 16.0), G + 0.1), L.ROAD, Fill.SURFACE)
    w = build_voxel_world(mb.build(), progress=False)
    overlap = w.objects[45, 37]  # x = 18.2, y = 15: under both
    assert np.all(overlap[3:11] == low + 1) and np.all(overlap[11:19] == 0) and np.all(overlap[19:27] == high + 1)
    assert w.objects[27, 37, 3] == low + 1  # building beats the road at the base level
    assert w.objects[60, 37, 3] == road + 1  # the road beyond, under the overhang
    assert np.all(w.objects[60, 37, 4:19] == 0)


def test_same_priority_lower_index_wins_deterministically():
    mb, _ = flat_city()
    a = mb.add(box_triangles((10.0, 10.0, G), (20.0, 20.0, 60.0)), L.BUILDING, Fill.SOLID)
    b = mb.add(box_triangles((15.0, 15.0, G), (25.0, 25.0, 65.0)), L.BUILDING, Fill.SOLID)
    w = build_voxel_world(mb.build(), progress=False)
    assert np.all(w.objects[45, 45, 3:11] == a + 1)  # both claim levels 3..10 here: a (lower index)
    assert np.all(w.objects[45, 45, 11:15] == b + 1)  # only b above 60


def test_one_hit_columns_and_open_shell():
    mb, _ = flat_city()
    gap = box_triangles((10.0, 10.0, G), (20.0, 20.0, 60.0))
    gap = np.delete(gap, 0, axis=0)  # one floor triangle missing: half the columns see only the roof
    g = mb.add(gap, L.BUILDING, Fill.SOLID)
    roof_only = box_triangles((30.0, 30.0, G), (40.0, 40.0, 60.0))[2:]  # no floor at all
    r = mb.add(roof_only, L.BUILDING, Fill.SOLID)
    w = build_voxel_world(mb.build(), progress=False)
    for i in range(25, 50):
        for j in (25, 30, 40, 49):
            assert np.all(w.objects[i, j, 3:11] == g + 1), (i, j)
    assert np.all(w.objects[75:100, 75:100, 3:11] == r + 1)


def test_sloped_terrain_fill_and_ground():
    slope = lambda x, y: 50.0 + 0.1 * x  # noqa: E731
    mb = MeshBuilder()
    mb.add(heightfield_triangles(np.linspace(0, 100, 11), np.linspace(0, 100, 11), slope), L.TERRAIN, Fill.TERRAIN)
    w = build_voxel_world(mb.build(), progress=False)
    xc = w.x0 + (np.arange(w.objects.shape[0]) + 0.5) * 0.4
    g = slope(xc, 0.0)
    assert np.allclose(w.ground, g[:, None], atol=1e-3)
    k = np.floor((g - w.z0) / 1.25 + 1e-3).astype(int)
    occ = w.objects != 0
    height = occ.sum(axis=2)
    assert np.array_equal(height, np.repeat((k + 1)[:, None], w.objects.shape[1], axis=1))
    rows = np.arange(len(k))
    below = k + 1 < w.objects.shape[2]
    assert np.all(occ[rows, 7, k]) and not np.any(occ[rows[below], 7, k[below] + 1])
    assert set(np.unique(w.labels[occ])) == {L.TERRAIN}
    assert w.ground_height(55.0, 3.0) == pytest.approx(55.5, abs=1e-3)
    assert w.ground_height(-50.0, 3.0) == pytest.approx(float(g[0]), abs=1e-3)  # outside: nearest edge


def test_ground_estimated_from_building_bases_on_slope():
    truth = lambda x, y: 60.0 + 0.2 * x  # noqa: E731  (20 m rise over 100 m)
    mb = MeshBuilder()
    for x in np.arange(2.0, 100.0, 12.0):
        for y in np.arange(2.0, 100.0, 12.0):
            base = truth(x, y)  # lowest corner of the footprint
            mb.add(box_triangles((x, y, base), (x + 4.0, y + 4.0, base + 10.0 + (x % 7))), L.BUILDING, Fill.SOLID)
    w = build_voxel_world(mb.build(), progress=False)
    assert w.synthetic_ground
    assert w.object_label[-1] == L.TERRAIN and w.object_instance[-1] == 0
    xc = w.x0 + (np.arange(w.objects.shape[0]) + 0.5) * 0.4
    err = w.ground - truth(xc, 0.0)[:, None]
    inner = slice(20, -20)
    assert np.abs(err[inner, inner]).max() < 1.5
    assert w.ground.max() - w.ground.min() > 15.0  # not one plane
    # the synthetic ground is filled: a drone sees terrain under every column
    lab = w.labels
    free_col = (40, 3)  # x = 16.2, between the buildings
    kg = int(np.floor((w.ground[free_col] - w.z0) / 1.25 + 1e-3))
    assert lab[free_col][kg] == L.TERRAIN and lab[free_col][kg + 1] == 0


def test_ego_frame_snapping_puts_ground_in_level_1():
    rng = np.random.default_rng(3)
    slope = lambda x, y: 52.3 + 0.23 * x + 0.11 * y + 3 * np.sin(x / 9.0)  # noqa: E731
    mb = MeshBuilder()
    mb.add(heightfield_triangles(np.linspace(0, 120, 61), np.linspace(0, 120, 61), slope), L.TERRAIN, Fill.TERRAIN)
    w = build_voxel_world(mb.build(), progress=False)
    for x, y, yaw in rng.uniform([0, 0, -np.pi], [120, 120, np.pi], size=(200, 3)):
        f = w.ego_frame(x, y, yaw)
        rel = w.ground_height(x, y) - f.ground_z
        assert -0.75 - 2e-3 <= rel < 0.5, rel
        lattice = (f.ground_z - 2.0 - w.z0) / 1.25
        assert abs(lattice - round(lattice)) < 1e-9
    f = w.ego_frame(60.0, 60.0, 0.4)
    lab, _ = w.crop(f)
    assert lab[100, 100, 1] == L.TERRAIN and lab[100, 100, 2] == 0


def test_crop_outside_world_is_free():
    mb, _ = flat_city()
    mb.add(box_triangles((40.0, 40.0, G), (60.0, 60.0, 70.0)), L.BUILDING, Fill.SOLID)
    w = build_voxel_world(mb.build(), progress=False)
    lab, ins = w.crop(EgoFrame(x=1000.0, y=1000.0, yaw=0.3, ground_z=50.75))
    assert not lab.any() and not ins.any()
    lab, _ = w.crop(w.ego_frame(0.0, 50.0, 0.0))  # agent on the west edge facing east: the back half is outside
    assert not lab[:100].any() and (lab[100:, :, :2] == L.TERRAIN).all()
    lab, _ = w.crop(EgoFrame(x=50.0, y=50.0, yaw=0.0, ground_z=500.0))  # far above the world's top
    assert not lab.any()
    assert not w.is_occupied(np.array([[-5.0, 50.0, 40.0], [50.0, 50.0, 1e4]])).any()


def test_crop_instances_match_mesh():
    rng = np.random.default_rng(0)
    mb, _ = flat_city()
    inst = {}
    for n in range(12):
        x, y = rng.uniform(5, 85, 2)
        o = mb.add(box_triangles((x, y, G), (x + 6, y + 6, G + rng.uniform(5, 40))), L.BUILDING, Fill.SOLID,
                   instance=1000 + 7 * n)
        inst[o] = 1000 + 7 * n
    mesh = mb.build()
    w = build_voxel_world(mesh, progress=False)
    lab, ins = w.crop(w.ego_frame(50.0, 50.0, 0.7))
    seen = set(np.unique(ins[lab == L.BUILDING]).tolist())
    assert seen and seen <= set(inst.values())
    assert np.array_equal(lab == L.BUILDING, np.isin(ins, list(inst.values())))
    # every voxel's instance is that of an object with the same label
    lut = dict(zip(mesh.object_instance.tolist(), mesh.object_label.tolist()))
    for i in np.unique(ins):
        if i:
            assert set(np.unique(lab[ins == i]).tolist()) == {lut[int(i)]}
