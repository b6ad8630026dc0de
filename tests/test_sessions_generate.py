"""End-to-end generation on the built-in sample district: determinism, workers, shards, resume."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from occworld_tokyo.sessions import layout
from occworld_tokyo.sessions.generate import GenerationSpec, generate_sessions
from occworld_tokyo.sessions.validate import validate


@pytest.fixture(scope="module")
def city():
    from occworld_tokyo.citymodel.sample_city import load_sample_city
    from occworld_tokyo.world import build_voxel_world

    mesh = load_sample_city()
    return mesh, build_voxel_world(mesh, progress=False)


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _gen(out: Path, city, workers: int = 1, **spec) -> object:
    mesh, world = city
    return generate_sessions(out, spec=GenerationSpec(**spec), workers=workers, progress=False, mesh=mesh, world=world)


def test_sessions_with_sensors_are_complete_and_valid(tmp_path, city):
    report = _gen(tmp_path, city, frames=3, sessions=2, sensors=True)
    assert report.written == ["drone_20240101_120000", "rover_20240101_120002"]  # 3 frames at 2 Hz = 1.5 s
    checks, problems = validate(tmp_path)
    assert not problems and all(not c.problems for c in checks), [c.problems for c in checks]
    drone = tmp_path / report.written[0]
    meta = json.loads((drone / "meta.json").read_text())
    assert meta["agent_type"] == "drone" and meta["n_frames"] == 3 and meta["grid"]["shape"] == [200, 200, 121]
    assert meta["sensors"]["camera"] and meta["city"]["origin"]
    with np.load(layout.occupancy_path(drone, 0)) as npz:
        occ = npz["occupancy"]
        assert npz["mask_lidar"].any() and npz["mask_camera"].any()
    assert (occ > 0).any(), "a drone over the sample district sees the city"
    pts = np.load(layout.lidar_path(drone, 0))
    assert pts.dtype == np.float32 and pts.shape[1] == 4 and len(pts) > 1000


def test_same_seed_gives_byte_identical_output_whatever_the_workers(tmp_path, city):
    _gen(tmp_path / "a", city, frames=2, sessions=2, sensors=True, seed=7)
    _gen(tmp_path / "b", city, workers=2, frames=2, sessions=2, sensors=True, seed=7)
    assert _tree_digest(tmp_path / "a") == _tree_digest(tmp_path / "b")
    _gen(tmp_path / "c", city, frames=2, sessions=2, sensors=True, seed=8)
    assert _tree_digest(tmp_path / "a") != _tree_digest(tmp_path / "c")


def test_shards_partition_the_sessions(tmp_path, city):
    full = _gen(tmp_path / "full", city, frames=2, sessions=3, sensors=False)
    parts = [_gen(tmp_path / "shards", city, frames=2, sessions=3, sensors=False, shard=(i, 2)) for i in range(2)]
    assert parts[0].written == [full.written[0], full.written[2]] and parts[1].written == [full.written[1]]
    assert _tree_digest(tmp_path / "full") == _tree_digest(tmp_path / "shards")


def test_rerun_skips_finished_and_redoes_interrupted_sessions(tmp_path, city):
    first = _gen(tmp_path, city, frames=2, sessions=2, sensors=False)
    before = _tree_digest(tmp_path)
    # simulate a crash in session 2: its folder is back to a half-written temporary
    name = first.written[1]
    (tmp_path / name).rename(tmp_path / f"{layout.TMP_PREFIX}{name}")
    (tmp_path / f"{layout.TMP_PREFIX}{name}" / "meta.json").unlink()
    again = _gen(tmp_path, city, frames=2, sessions=2, sensors=False)
    assert again.skipped == [first.written[0]] and again.written == [name]
    assert _tree_digest(tmp_path) == before
    assert not any(p.name.startswith(layout.TMP_PREFIX) for p in tmp_path.iterdir())


def test_drone_grid_is_relative_to_ground(tmp_path, city):
    report = _gen(tmp_path, city, frames=2, sessions=1, agent="drone", sensors=False)
    session = tmp_path / report.written[0]
    pose = json.loads(layout.pose_path(session, 0).read_text())
    height_above_ground = pose["position"]["z"] - pose["ground_height"]
    assert 30.0 - 1.25 <= height_above_ground <= 150.0
    with np.load(layout.occupancy_path(session, 0)) as npz:
        occ = npz["occupancy"]
    # the ground is in the lowest levels of the grid, not at the drone's height
    column_has_ground = (occ[:, :, :3] > 0).any(axis=2)
    assert column_has_ground.mean() > 0.5


def _annotations(session: Path, i: int) -> list[dict]:
    return json.loads(layout.annotation_path(session, i).read_text())["objects"]


def test_moving_agents_are_in_occupancy_annotations_and_lidar(tmp_path, city):
    from occworld_tokyo.agents import AGENT_ID_BASE
    from occworld_tokyo.labels import DYNAMIC_IDS

    report = _gen(tmp_path, city, frames=4, sessions=2, sensors=True, seed=3)
    lidar_hits_on_agents = 0
    for name in report.written:
        session = tmp_path / name
        ids_seen: dict[int, str] = {}
        for i in range(4):
            objs = _annotations(session, i)
            with np.load(layout.occupancy_path(session, i)) as npz:
                occ, inst = npz["occupancy"], npz["instances"]
            for o in objs:
                assert o["id"] >= AGENT_ID_BASE
                assert ids_seen.setdefault(o["id"], o["class"]) == o["class"], "an id keeps its class"
                voxels = inst == o["id"]
                assert voxels.sum() == o["num_voxels"]
                if o["num_voxels"]:
                    assert set(np.unique(occ[voxels])) <= set(DYNAMIC_IDS)
            # every agent voxel belongs to an annotated agent
            agent_ids = set(np.unique(inst[inst >= AGENT_ID_BASE]).tolist())
            assert agent_ids <= {o["id"] for o in objs}
            pts = np.load(layout.lidar_path(session, i))[:, :3]
            for o in objs:
                c, half = np.array(o["center"]), np.array(o["size"]) / 2 + 0.1
                cy, sy = np.cos(o["yaw"]), np.sin(o["yaw"])
                d = pts - c
                local = np.stack([cy * d[:, 0] + sy * d[:, 1], -sy * d[:, 0] + cy * d[:, 1], d[:, 2]], axis=1)
                lidar_hits_on_agents += int(np.all(np.abs(local) <= half, axis=1).sum())
        assert ids_seen, f"{name}: a session over the sample district sees moving agents"
    assert lidar_hits_on_agents > 0, "lidar rays hit the moving agents"


def test_static_city_has_no_agents(tmp_path, city):
    from occworld_tokyo.agents import AGENT_ID_BASE, TrafficDensity

    report = _gen(tmp_path, city, frames=2, sessions=1, sensors=False, density=TrafficDensity.none())
    session = tmp_path / report.written[0]
    assert _annotations(session, 0) == [] and _annotations(session, 1) == []
    with np.load(layout.occupancy_path(session, 1)) as npz:
        assert not (npz["instances"] >= AGENT_ID_BASE).any()
    assert json.loads((session / "meta.json").read_text())["traffic"]["agents"] == 0


def test_agents_keep_clear_of_the_ego(city):
    from occworld_tokyo.sessions.generate import EGO_CLEARANCE, plan_trajectory, simulate_session_traffic

    mesh, world = city
    spec = GenerationSpec(frames=20, sessions=2)
    for index, agent in enumerate(("drone", "rover")):
        traj = plan_trajectory(world, agent, 20, 2.0, np.random.default_rng([0, index]))
        rec = simulate_session_traffic(world, traj, spec, index)
        for i in range(20):
            st = rec.at(i)
            if len(st):
                d = traj.position[i] - st.centers
                c, s = np.cos(st.yaws), np.sin(st.yaws)
                local = np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], d[:, 2]], axis=1)
                assert not np.all(np.abs(local) <= st.sizes / 2 + EGO_CLEARANCE[agent], axis=1).any()
