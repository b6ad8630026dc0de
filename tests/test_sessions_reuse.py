"""Re-runs into a folder of finished sessions: reuse only what this run would have written, else stop untouched."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from occworld_tokyo.agents import TrafficDensity
from occworld_tokyo.sessions import layout
from occworld_tokyo.sessions.generate import DATA_REVISION, GenerationError, GenerationSpec, generate_sessions

BASE = {"frames": 2, "sessions": 2, "sensors": False, "seed": 0}  # drone_20240101_120000, rover_20240101_120001


@pytest.fixture(scope="module")
def city():
    from occworld_tokyo.citymodel.sample_city import load_sample_city
    from occworld_tokyo.world import build_voxel_world

    mesh = load_sample_city()
    return mesh, build_voxel_world(mesh, progress=False)


def _gen(out: Path, city, **overrides) -> object:
    mesh, world = city
    spec = GenerationSpec(**{**BASE, **overrides})
    return generate_sessions(out, spec=spec, progress=False, mesh=mesh, world=world)


@pytest.fixture(scope="module")
def generated(tmp_path_factory, city) -> Path:
    root = tmp_path_factory.mktemp("reuse") / "data"
    report = _gen(root, city)
    assert len(report.written) == 2
    return root


@pytest.fixture
def data(generated, tmp_path) -> Path:
    """A private copy of the generated folder (tests may edit it)."""
    out = tmp_path / "data"
    shutil.copytree(generated, out)
    return out


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _first(root: Path) -> Path:
    return layout.find_sessions(root)[0]


def test_meta_records_the_data_revision(data):
    meta = json.loads((_first(data) / "meta.json").read_text())
    assert meta["generator"]["revision"] == DATA_REVISION == 5


def test_rerun_with_the_same_spec_skips(data, city):
    before = _digest(data)
    report = _gen(data, city)
    assert report.written == [] and len(report.skipped) == 2 and report.others == []
    assert "note" not in report.summary()
    assert _digest(data) == before


@pytest.mark.parametrize("overrides, field", [
    ({"seed": 1}, "seed"),
    ({"frames": 3}, "n_frames"),
    ({"density": TrafficDensity(vehicles_per_km2=100.0)}, "traffic.density_per_km2.vehicles"),
    ({"density": TrafficDensity.none()}, "traffic.density_per_km2.pedestrians"),  # --static
    ({"sensors": True}, "sensors"),
])
def test_rerun_with_other_settings_stops_and_leaves_everything_untouched(data, city, overrides, field):
    session = _first(data)
    before = _digest(data)
    mtimes = {p: p.stat().st_mtime_ns for p in (session / "meta.json", layout.occupancy_path(session, 0))}
    with pytest.raises(GenerationError) as info:
        _gen(data, city, **overrides)
    msg = str(info.value)
    assert field in msg and str(session) in msg
    assert "existing" in msg and "requested" in msg
    assert "write to a new output folder, or delete those sessions to regenerate them" in msg
    assert _digest(data) == before
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert not any(p.name.startswith(layout.TMP_PREFIX) for p in data.iterdir())


def test_other_city_stops(data, city):
    mesh, world = city
    before = _digest(data)
    with pytest.raises(GenerationError, match="city.inputs"):
        generate_sessions(data, ["somewhere/else.gml"], spec=GenerationSpec(**BASE), progress=False,
                          mesh=mesh, world=world)
    assert _digest(data) == before


def test_sessions_of_an_older_revision_stop(data, city):
    meta_path = _first(data) / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["generator"]["revision"]  # written before revisions existed = revision 1
    meta_path.write_text(json.dumps(meta))
    before = _digest(data)
    with pytest.raises(GenerationError, match=rf"generator\.revision: existing 1, requested {DATA_REVISION}"):
        _gen(data, city)
    assert _digest(data) == before


def test_corrupt_meta_names_the_file(data, city):
    meta_path = _first(data) / "meta.json"
    meta_path.write_text('{"name": "drone_2024')
    before = _digest(data)
    with pytest.raises(GenerationError) as info:
        _gen(data, city)
    assert str(meta_path) in str(info.value) and "delete" in str(info.value)
    assert _digest(data) == before


def test_other_sessions_in_the_folder_are_noted(data, city):
    report = _gen(data, city, sessions=1)
    assert report.skipped == ["drone_20240101_120000"] and report.others == ["rover_20240101_120001"]
    summary = report.summary()
    assert "note:" in summary and "1 other session(s)" in summary and "rover_20240101_120001" in summary


def test_sessions_of_other_shards_are_not_foreign(data, city):
    report = _gen(data, city, shard=(0, 2))
    assert report.skipped == ["drone_20240101_120000"] and report.others == []
    assert "note" not in report.summary()


def test_a_failure_in_a_generation_process_stops_the_run_with_its_message(tmp_path, city, monkeypatch):
    """workers=2: the failing session's error reaches the caller (with the process's traceback as a note), the
    other process is stopped, and no folder carries a session's final name without being complete."""
    import occworld_tokyo.sessions.generate as gen
    from occworld_tokyo.trajectories.curves import PlanningError

    real = gen.plan_trajectory

    def plan(world, agent, *args):
        if agent == "rover":
            raise PlanningError("no free street space")
        return real(world, agent, *args)

    monkeypatch.setattr(gen, "plan_trajectory", plan)   # inherited by the forked processes
    out = tmp_path / "data"
    mesh, world = city
    with pytest.raises(GenerationError) as info:
        generate_sessions(out, spec=GenerationSpec(**{**BASE, "sessions": 3}), progress=False, mesh=mesh,
                          world=world, workers=2)
    assert "session rover_20240101_120001 (rover)" in str(info.value) and "no free street space" in str(info.value)
    where = "".join(getattr(info.value, "__notes__", [])) + str(info.value.__cause__)  # 3.11+ / 3.10
    assert "in the generation process of session rover_20240101_120001" in where
    finals = [p for p in out.iterdir() if not p.name.startswith(layout.TMP_PREFIX)] if out.exists() else []
    assert all((p / "meta.json").exists() for p in finals)


def test_a_session_that_cannot_be_planned_names_itself_and_keeps_the_others(tmp_path, city, monkeypatch):
    import occworld_tokyo.sessions.generate as gen
    from occworld_tokyo.trajectories.curves import PlanningError

    real = gen.plan_trajectory

    def plan(world, agent, *args):
        if agent == "rover":
            raise PlanningError("no free street space")
        return real(world, agent, *args)

    monkeypatch.setattr(gen, "plan_trajectory", plan)
    out = tmp_path / "data"
    with pytest.raises(GenerationError) as info:
        _gen(out, city)
    message = str(info.value)
    assert "session rover_20240101_120001 (rover)" in message and "no free street space" in message
    assert "--frames" in message and "re-run resumes" in message
    assert layout.is_session_dir(out / "drone_20240101_120000")
    assert sorted(p.name for p in out.iterdir()) == ["drone_20240101_120000"]   # nothing half-written
