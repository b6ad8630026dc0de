"""Painting agent boxes into the ego grid, the annotations that describe them, and the agent mesh."""

from __future__ import annotations

import json

import numpy as np

from occworld_tokyo.agents import AgentStates, agent_mesh, annotations, paint_agents
from occworld_tokyo.agents.specs import AGENT_ID_BASE
from occworld_tokyo.citymodel.mesh import CityMesh, Fill
from occworld_tokyo.grid import DEFAULT_GRID, EgoFrame
from occworld_tokyo.labels import DRONE, PEDESTRIAN, VEHICLE

GRID = DEFAULT_GRID


def empty_grid() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(GRID.shape, np.uint8), np.zeros(GRID.shape, np.int32)


def states(centers, sizes, yaws, labels=None, vel=None) -> AgentStates:
    k = len(centers)
    return AgentStates(np.arange(AGENT_ID_BASE, AGENT_ID_BASE + k), labels if labels is not None else [VEHICLE] * k,
                       centers, sizes, yaws, vel if vel is not None else np.zeros((k, 3)))


def brute_force_voxels(center_ego, size, yaw_ego) -> np.ndarray:
    """The documented rule over every voxel of the grid: footprint contains the column centre (x, y),
    and the voxel's z interval overlaps the box height with positive length."""
    xc, yc, zc = GRID.centers(0), GRID.centers(1), GRID.centers(2)
    dz = GRID.voxel_size[2]
    dx, dy = xc[:, None] - center_ego[0], yc[None, :] - center_ego[1]
    c, s = np.cos(yaw_ego), np.sin(yaw_ego)
    lx, ly = c * dx + s * dy, -s * dx + c * dy
    foot = (np.abs(lx) <= size[0] / 2 + 1e-9) & (np.abs(ly) <= size[1] / 2 + 1e-9)
    zlo = zc - dz / 2
    zin = (zlo < center_ego[2] + size[2] / 2 - 1e-9) & (zlo + dz > center_ego[2] - size[2] / 2 + 1e-9)
    return foot[:, :, None] & zin[None, None, :]


def test_axis_aligned_box_count_equals_volume():
    # faces on voxel boundaries: x [2.0, 6.8], y [-1.2, 0.8], z [-0.75, 2.25] (ego; 12 x 5 x 2 voxels... z 3 m / 1.25 not whole)
    frame = EgoFrame(100.0, 50.0, 0.0, 20.0)
    lo = (2.0, -1.2, -2.0 + 1.25 * 1)  # z from level 1 to level 4 (3 levels)
    hi = (6.8, 0.8, -2.0 + 1.25 * 4)
    c = np.array([(a + b) / 2 for a, b in zip(lo, hi)]) + [frame.x, frame.y, frame.ground_z]
    size = np.array(hi) - np.array(lo)
    lab, ins = empty_grid()
    paint_agents(lab, ins, frame, states([c], [size], [0.0]), GRID)
    expected = np.prod(size) / np.prod(GRID.voxel_size)
    assert abs(expected - round(expected)) < 1e-9
    assert (ins != 0).sum() == round(expected) == 12 * 5 * 3
    assert set(np.unique(ins[ins != 0])) == {AGENT_ID_BASE} and set(np.unique(lab[lab != 0])) == {VEHICLE}
    idx = np.argwhere(ins != 0)
    assert idx[:, 0].min() == 105 and idx[:, 0].max() == 116  # x 2.0 m -> voxel 105
    assert idx[:, 2].min() == 1 and idx[:, 2].max() == 3


def test_rotated_box_matches_brute_force_rule():
    frame = EgoFrame(-30.0, 12.0, 0.7, 40.0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        ego_c = np.array([rng.uniform(-38, 38), rng.uniform(-38, 38), rng.uniform(-1, 80)])
        size = np.array([rng.uniform(0.3, 12), rng.uniform(0.3, 2.6), rng.uniform(0.2, 3.5)])
        yaw_w = rng.uniform(-np.pi, np.pi)
        world_c = frame.ego_to_world(ego_c)
        lab, ins = empty_grid()
        paint_agents(lab, ins, frame, states([world_c], [size], [yaw_w]), GRID)
        ref = brute_force_voxels(ego_c, size, yaw_w - frame.yaw)
        np.testing.assert_array_equal(ins != 0, ref)
        assert ref.sum() > 0  # thin boxes (drones) never vanish


def test_box_at_grid_edge_is_clipped_and_far_box_ignored():
    frame = EgoFrame(0.0, 0.0, 0.0, 0.0)
    lab, ins = empty_grid()
    st = states([[39.0, 0.0, 2.0], [300.0, 0.0, 2.0]], [[4.5, 1.8, 1.5]] * 2, [0.3, 0.0])
    paint_agents(lab, ins, frame, st, GRID)
    ref = brute_force_voxels(np.array([39.0, 0.0, 2.0]), [4.5, 1.8, 1.5], 0.3)
    np.testing.assert_array_equal(ins == AGENT_ID_BASE, ref)
    assert not (ins == AGENT_ID_BASE + 1).any()
    ann = annotations(st, frame, GRID, occupancy_instances=ins)
    assert [a["id"] for a in ann] == [AGENT_ID_BASE]


def test_annotation_boxes_cover_exactly_their_voxels():
    frame = EgoFrame(500.0, -200.0, 2.2, 35.0)
    rng = np.random.default_rng(1)
    k = 60
    ego = np.column_stack([rng.uniform(-45, 45, k), rng.uniform(-45, 45, k), rng.uniform(0, 60, k)])
    ego[:, 0] = np.round(ego[:, 0] / 6) * 6  # spread on a lattice so boxes do not overlap
    ego[:, 1] = np.round(ego[:, 1] / 4) * 4
    _, first = np.unique(ego[:, :2], axis=0, return_index=True)
    ego = ego[np.sort(first)]
    k = len(ego)
    sizes = np.column_stack([rng.uniform(0.4, 4.5, k), rng.uniform(0.4, 1.8, k), rng.uniform(0.3, 3.0, k)])
    labels = rng.choice([VEHICLE, PEDESTRIAN, DRONE], k)
    vel = rng.normal(0, 5, (k, 3))
    st = states(frame.ego_to_world(ego), sizes, rng.uniform(-np.pi, np.pi, k), labels, vel)
    lab, ins = empty_grid()
    paint_agents(lab, ins, frame, st, GRID)
    ann = json.loads(json.dumps(annotations(st, frame, GRID, occupancy_instances=ins)))
    painted = set(np.unique(ins[ins != 0]).tolist())
    assert {a["id"] for a in ann} == painted and 0 < len(ann) < k  # some boxes lie outside the grid
    for a in ann:
        ref = brute_force_voxels(np.array(a["center"]), a["size"], a["yaw"])
        np.testing.assert_array_equal(ins == a["id"], ref)
        assert a["num_voxels"] == int(ref.sum())
        i = int(np.nonzero(st.ids == a["id"])[0][0])
        assert a["class"] == {VEHICLE: "vehicle", PEDESTRIAN: "pedestrian", DRONE: "drone"}[int(labels[i])]
        assert np.all(lab[ins == a["id"]] == labels[i])
        np.testing.assert_allclose(a["velocity"], frame.rotate_to_ego(vel[i]), atol=1e-9)
        np.testing.assert_allclose(np.linalg.norm(a["velocity"][:2]), np.linalg.norm(vel[i, :2]), atol=1e-9)
        w, x, y, z = a["rotation"]
        assert abs(2 * np.arctan2(z, w) - a["yaw"]) < 1e-9 or abs(abs(2 * np.arctan2(z, w) - a["yaw"]) - 2 * np.pi) < 1e-9


def test_agent_mesh_boxes():
    st = states([[10.0, 5.0, 41.0], [-3.0, 2.0, 80.0]], [[4.5, 1.8, 1.5], [0.8, 0.8, 0.3]], [0.5, -2.0],
                [VEHICLE, DRONE])
    m = agent_mesh(st)
    assert m.n_triangles == 24 and m.n_objects == 2
    np.testing.assert_array_equal(m.object_instance, st.ids)
    np.testing.assert_array_equal(m.object_label, [VEHICLE, DRONE])
    assert (m.object_fill == Fill.SOLID).all()
    for o in range(2):
        tris = m.triangles[m.tri_object == o].astype(np.float64)
        n = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
        area = 0.5 * np.linalg.norm(n, axis=1)
        L, W, H = st.sizes[o]
        assert abs(area.sum() - 2 * (L * W + L * H + W * H)) < 1e-3
        outward = np.einsum("ij,ij->i", n, tris.mean(axis=1) - st.centers[o])
        assert (outward > 0).all()
        vol = np.einsum("ij,ij->i", tris[:, 0] - st.centers[o], np.cross(tris[:, 1] - st.centers[o],
                                                                         tris[:, 2] - st.centers[o])).sum() / 6
        assert abs(vol - L * W * H) < 1e-3
    city = CityMesh(np.zeros((1, 3, 3)), [0], [1], [5], [0], ["b"])
    both = CityMesh.concatenate([city, m])
    assert both.n_objects == 3 and both.n_triangles == 25
    assert agent_mesh(AgentStates.empty()).n_triangles == 0


def test_paint_with_100_agents_is_repeatable():
    """100 boxes at once paint the same voxels on every call (the speed is measured in benchmarks/bench_agents.py,
    not asserted here: a wall-clock limit fails on a busy machine)."""
    frame = EgoFrame(0.0, 0.0, 0.0, 0.0)
    rng = np.random.default_rng(2)
    st = states(np.column_stack([rng.uniform(-40, 40, 100), rng.uniform(-40, 40, 100), np.full(100, 1.0)]),
                np.tile([4.5, 1.8, 1.5], (100, 1)), rng.uniform(-3, 3, 100))
    lab, ins = empty_grid()
    paint_agents(lab, ins, frame, st, GRID)
    first = lab.copy(), ins.copy()
    for _ in range(2):
        paint_agents(lab, ins, frame, st, GRID)
    assert np.array_equal(lab, first[0]) and np.array_equal(ins, first[1])
    painted = set(np.unique(ins[lab == VEHICLE]).tolist())
    assert len(painted) >= 90 and painted <= set(st.ids.tolist())  # overlapping boxes may hide a few
