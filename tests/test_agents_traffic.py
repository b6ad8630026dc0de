"""Traffic simulation on a small hand-made voxel world (a street cross between four building blocks)."""

from __future__ import annotations

import numpy as np
import pytest

from occworld_tokyo.agents import AGENT_ID_BASE, TrafficDensity, simulate_traffic
from occworld_tokyo.agents.states import AgentStates
from occworld_tokyo.labels import BUILDING, DRONE, PEDESTRIAN, ROAD, SIDEWALK, TERRAIN, VEHICLE
from occworld_tokyo.world import VoxelWorld

SIZE = 200.0
STREET = (90.0, 110.0)  # both streets of the cross span this interval (20 m wide)


def make_cross_world() -> VoxelWorld:
    """Sloping terrain, a road cross (x and y in STREET), four blocks of buildings set back 3 m, one tree."""
    dx, dz = 0.4, 1.25
    n = int(SIZE / dx)
    xs = (np.arange(n) + 0.5) * dx
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    ground = (10.0 + 0.02 * X + 0.01 * Y).astype(np.float32)
    nz = 40
    k = np.arange(nz)[None, None, :]
    kg = np.floor(ground / dz).astype(np.int64)[..., None]
    street = ((X >= STREET[0]) & (X < STREET[1])) | ((Y >= STREET[0]) & (Y < STREET[1]))
    objects = np.zeros((n, n, nz), dtype=np.uint16)
    objects[k < kg] = 1
    objects[(k == kg) & street[..., None]] = 2
    objects[(k == kg) & ~street[..., None]] = 1
    near = ((X >= STREET[0] - 3) & (X < STREET[1] + 3)) | ((Y >= STREET[0] - 3) & (Y < STREET[1] + 3))
    heights = {3: 12.0, 4: 30.0, 5: 20.0, 6: 45.0}
    quad = 3 + (X >= 100).astype(int) + 2 * (Y >= 100).astype(int)
    built = ~near & (X > 2) & (Y > 2) & (X < SIZE - 2) & (Y < SIZE - 2)
    top_lv = np.ceil((ground + np.vectorize(heights.get)(quad)) / dz).astype(np.int64)[..., None]
    bmask = built[..., None] & (k >= kg) & (k < top_lv)
    objects[bmask] = np.broadcast_to(quad[..., None], objects.shape)[bmask]
    tree = (np.hypot(X - 60, Y - 93.5) < 1.2)  # a tree on the road edge
    objects[tree[..., None] & (k >= kg) & (k < kg + 5)] = 7
    label = np.array([0, TERRAIN, ROAD, BUILDING, BUILDING, BUILDING, BUILDING, 5], dtype=np.uint8)
    instance = np.array([0, 0, 11, 21, 22, 23, 24, 31], dtype=np.int32)
    occ = objects != 0
    kmax = nz - 1 - np.argmax(occ[..., ::-1], axis=2)
    top = (kmax + 1) * dz
    top = np.where(top - ground > dz, top, ground).astype(np.float32)
    return VoxelWorld(0.0, 0.0, 0.0, (dx, dx, dz), objects, label, instance, ground, top)


@pytest.fixture(scope="module")
def world() -> VoxelWorld:
    return make_cross_world()


DENSE = TrafficDensity(vehicles_per_km2=600.0, pedestrians_per_km2=3000.0, drones_per_km2=300.0)


@pytest.fixture(scope="module")
def recording(world):
    return simulate_traffic(world, 60, 2.0, np.random.default_rng(7), DENSE)


def box_points(states: AgentStates, n: int = 6) -> np.ndarray:
    """(K, n^3, 3) world points filling each box (faces included)."""
    g = np.linspace(-0.5, 0.5, n)
    u = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    loc = u[None] * states.sizes[:, None, :]
    c, s = np.cos(states.yaws)[:, None], np.sin(states.yaws)[:, None]
    return np.stack([states.centers[:, None, 0] + c * loc[..., 0] - s * loc[..., 1],
                     states.centers[:, None, 1] + s * loc[..., 0] + c * loc[..., 1],
                     states.centers[:, None, 2] + loc[..., 2]], -1)


def test_population(recording):
    f = recording.at(0)
    for label in (VEHICLE, PEDESTRIAN, DRONE):
        assert (f.labels == label).sum() >= 3, label
    assert len(recording) == 60


def test_no_agent_inside_a_building_or_tree(world, recording):
    for i, f in enumerate(recording.frames):
        pts = box_points(f)
        lab = world.label_at(pts.reshape(-1, 3)).reshape(len(f), -1)
        ground_like = np.isin(lab, [0, TERRAIN, ROAD, SIDEWALK])
        assert ground_like.all(), f"frame {i}: agents {f.ids[~ground_like.all(1)]} intersect the city"
        air = f.labels == DRONE
        assert (lab[air] == 0).all(), f"frame {i}: a drone touches the ground or a building"


def _inside(points: np.ndarray, center: np.ndarray, size: np.ndarray, yaw: float) -> np.ndarray:
    d = points - center
    c, s = np.cos(yaw), np.sin(yaw)
    lx, ly = c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]
    return (np.abs(lx) < size[0] / 2) & (np.abs(ly) < size[1] / 2) & (np.abs(d[:, 2]) < size[2] / 2)


def test_no_two_agents_overlap(recording):
    """Brute force, independent of the simulator's separating-axis test: no point of one box inside another."""
    for i, f in enumerate(recording.frames):
        pts = box_points(f, 7)
        for a in range(len(f)):
            near = np.nonzero(np.linalg.norm(f.centers - f.centers[a], axis=1) < 0.5 * (
                np.linalg.norm(f.sizes, axis=1) + np.linalg.norm(f.sizes[a])))[0]
            for b in near[near != a]:
                assert not _inside(pts[b], f.centers[a], f.sizes[a], f.yaws[a]).any(), \
                    f"frame {i}: agents {f.ids[a]} and {f.ids[b]} overlap"


def test_ids_persistent_unique_and_disjoint(world, recording):
    seen: dict[int, tuple] = {}
    last_frame: dict[int, int] = {}
    for i, f in enumerate(recording.frames):
        assert len(np.unique(f.ids)) == len(f.ids)
        assert (f.ids >= AGENT_ID_BASE).all() and not np.isin(f.ids, world.object_instance).any()
        for a, agent_id in enumerate(f.ids.tolist()):
            sig = (int(f.labels[a]), int(f.kinds[a]), tuple(np.round(f.sizes[a], 9)))
            assert seen.setdefault(agent_id, sig) == sig, f"id {agent_id} changed class or size"
            if agent_id in last_frame:
                assert last_frame[agent_id] == i - 1, f"id {agent_id} came back after leaving"
                prev = recording.at(i - 1)
                j = int(np.nonzero(prev.ids == agent_id)[0][0])
                assert np.linalg.norm(f.centers[a, :2] - prev.centers[j, :2]) < 16.0 * 0.5, "an id jumped"
            last_frame[agent_id] = i


def test_agents_sit_on_the_terrain_and_drones_fly(world, recording):
    for f in recording.frames:
        ground = world.ground_height(f.centers[:, 0], f.centers[:, 1])
        on_ground = f.labels != DRONE
        np.testing.assert_allclose(f.centers[on_ground, 2] - f.sizes[on_ground, 2] / 2, ground[on_ground], atol=1e-6)
        agl = f.centers[~on_ground, 2] - ground[~on_ground]
        assert (agl >= 30.0 - 1e-6).all() and (agl <= 120.0).all()
        surface = world.surface_height(f.centers[~on_ground, 0], f.centers[~on_ground, 1])
        assert (f.centers[~on_ground, 2] - f.sizes[~on_ground, 2] / 2 > surface + 5.0).all()


def test_vehicles_drive_on_the_road_at_plausible_speeds(world, recording):
    speeds, on_road = [], []
    for f in recording.frames:
        v = f.labels == VEHICLE
        speeds.append(np.hypot(f.velocities[v, 0], f.velocities[v, 1]))
        ground = world.ground_height(f.centers[v, 0], f.centers[v, 1])
        on_road.append(world.label_at(np.column_stack([f.centers[v, :2], ground + 1e-3])))
        p = f.labels == PEDESTRIAN
        assert (np.hypot(f.velocities[p, 0], f.velocities[p, 1]) <= 1.6 * 1.0001).all()
    speeds = np.concatenate(speeds)
    assert speeds.max() <= 14.0 * 1.06 + 1e-6
    assert speeds.max() > 5.0, "no vehicle ever reaches a driving speed"
    lab = np.concatenate(on_road)
    assert np.isin(lab, [ROAD]).mean() > 0.98


CENTRE = np.array([sum(STREET) / 2, sum(STREET) / 2])


def _speeds(rec, label=VEHICLE) -> np.ndarray:
    return np.concatenate([np.hypot(*f.velocities[f.labels == label, :2].T) for f in rec.frames])


def _longest_stop_s(rec) -> float:
    run: dict[int, int] = {}
    longest = 0
    for f in rec.frames:
        v = f.labels == VEHICLE
        for agent_id, speed in zip(f.ids[v].tolist(), np.hypot(*f.velocities[v, :2].T)):
            run[agent_id] = run.get(agent_id, 0) + 1 if speed < 0.2 else 0
            longest = max(longest, run[agent_id])
    return longest / rec.rate_hz


@pytest.fixture(scope="module")
def default_recording(world):
    """One minute at the default density (10 vehicles, 40 pedestrians on this world)."""
    return simulate_traffic(world, 120, 2.0, np.random.default_rng(7), TrafficDensity())


def test_traffic_flows_through_the_signalled_junction(default_recording):
    rec = default_recording
    assert rec.info["junctions"] == 1
    assert rec.info["left_stuck"] == 0, "a vehicle was removed by the gridlock breaker"
    assert rec.info["junction_passes"] >= 10, rec.info
    assert np.mean(_speeds(rec)) > 3.0
    # a red light is at most one cycle of the other street (max green 20 s + amber + all red) plus the queue
    assert _longest_stop_s(rec) < 45.0


def test_dense_junction_never_locks(recording):
    """Far more vehicles than one junction can serve: queues, but the box keeps clearing."""
    assert recording.info["left_stuck"] == 0
    for start in range(0, len(recording), 20):  # every 10 s a vehicle crosses the box at speed
        moving = [np.any((np.linalg.norm(f.centers[:, :2] - CENTRE, axis=1) < 10.0) & (f.labels == VEHICLE)
                         & (np.hypot(f.velocities[:, 0], f.velocities[:, 1]) > 1.0))
                  for f in recording.frames[start:start + 20]]
        assert any(moving), f"nothing moves through the junction in frames {start}-{start + 19}"


def test_crossing_streets_never_share_the_junction_box(recording, default_recording):
    """The signal serves one street axis at a time and clears the box in between: vehicles that came in
    along x and vehicles that came in along y are never inside at the same frame."""
    n_checked = 0
    for rec in (recording, default_recording):
        outside_axis: dict[int, int] = {}
        for i, f in enumerate(rec.frames):
            d = f.centers[:, :2] - CENTRE
            axes = set()
            for a in np.nonzero(f.labels == VEHICLE)[0]:
                agent_id = int(f.ids[a])
                if np.linalg.norm(d[a]) >= 13.0:
                    outside_axis[agent_id] = int(abs(d[a, 1]) > abs(d[a, 0]))  # 0: on the x street
                elif np.linalg.norm(d[a]) < 9.0 and agent_id in outside_axis:
                    axes.add(outside_axis[agent_id])
            assert len(axes) < 2, f"frame {i}: vehicles from both streets inside the junction"
            n_checked += len(axes)
    assert n_checked > 20


def test_vehicles_keep_left_of_the_centreline(recording):
    """On the straight x-street (y in STREET, away from the crossing) eastbound vehicles are north of
    the centreline (Japan keeps left: left of travel = +y when driving +x)."""
    c = sum(STREET) / 2
    n = 0
    for f in recording.frames:
        v = (f.labels == VEHICLE) & (f.centers[:, 1] > STREET[0]) & (f.centers[:, 1] < STREET[1]) & (
            np.abs(f.centers[:, 0] - c) > 25) & (np.hypot(f.velocities[:, 0], f.velocities[:, 1]) > 1)
        east = v & (f.velocities[:, 0] > 0)
        west = v & (f.velocities[:, 0] < 0)
        assert (f.centers[east, 1] > c + 0.5).all() and (f.centers[west, 1] < c - 0.5).all()
        n += east.sum() + west.sum()
    assert n > 10


def test_smooth_headings(recording):
    for a, b in zip(recording.frames[:-1], recording.frames[1:]):
        common, ia, ib = np.intersect1d(a.ids, b.ids, return_indices=True)
        v = a.labels[ia] == VEHICLE
        dyaw = np.abs((b.yaws[ib] - a.yaws[ia] + np.pi) % (2 * np.pi) - np.pi)[v]
        dist = np.linalg.norm(b.centers[ib, :2] - a.centers[ia, :2], axis=1)[v]
        # heading changes only along the path, at most 0.5 rad per metre (tightest left turns ~2.3 m radius)
        assert (dyaw <= 0.5 * dist + 0.05).all(), "a vehicle heading jumps"


def test_determinism_and_seed_dependence(world):
    a = simulate_traffic(world, 8, 2.0, np.random.default_rng(3), DENSE)
    b = simulate_traffic(world, 8, 2.0, np.random.default_rng(3), DENSE)
    c = simulate_traffic(world, 8, 2.0, np.random.default_rng(4), DENSE)
    for fa, fb in zip(a.frames, b.frames):
        for name in ("ids", "labels", "centers", "sizes", "yaws", "velocities", "kinds"):
            np.testing.assert_array_equal(getattr(fa, name), getattr(fb, name))
    assert not np.array_equal(a.at(7).centers, c.at(7).centers)


def test_density_zero_and_single_classes(world):
    rec = simulate_traffic(world, 5, 2.0, np.random.default_rng(0), TrafficDensity.none())
    assert len(rec) == 5 and all(len(f) == 0 for f in rec.frames)
    rec = simulate_traffic(world, 3, 2.0, np.random.default_rng(0), TrafficDensity(0.0, 0.0, 200.0))
    assert len(rec.at(0)) > 0 and (rec.at(0).labels == DRONE).all()


def test_region_limits_agents(world):
    region = (0.0, 0.0, 100.0, 100.0)
    rec = simulate_traffic(world, 6, 2.0, np.random.default_rng(1), DENSE, region=region)
    for f in rec.frames:
        assert len(f) > 0
        assert (f.centers[:, 0] < 100.0 + 1e-6).all() and (f.centers[:, 1] < 100.0 + 1e-6).all()
