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
