"""`occworld-tokyo view ... --save FILE.rrd`: the recording read back with rerun's own reader (rerun.chunk.RrdReader)
holds the expected entities, the `frame` timeline and the voxels of the session."""

from __future__ import annotations

import json

import numpy as np
import pytest

from occworld_tokyo.cli import main as cli
from occworld_tokyo.sessions import layout

ROVER = "rover_20240101_120004"


def _rrd_reader():
    """rerun's reader, from the optional `viz` extra (scripts/setup.sh installs it): without the extra the tests that
    read a recording skip, naming it; collection and the refusal tests never need it."""
    return pytest.importorskip("rerun.chunk", reason="the viz extra is not installed: pip install '.[viz]'").RrdReader


def read_rrd(path, reader) -> dict[str, dict]:
    """entity path -> {'frames': sorted frame values, 'rows': [record batch rows...]} of the recording."""
    out: dict[str, dict] = {}
    for chunk in reader(path).stream():
        entry = out.setdefault(chunk.entity_path, {"frames": set(), "batches": []})
        batch = chunk.to_record_batch()
        if "frame" in batch.schema.names:
            entry["frames"].update(batch.column("frame").to_pylist())
        entry["batches"].append(batch)
    for entry in out.values():
        entry["frames"] = sorted(entry["frames"])
    return out


def _column(entry: dict, frame: int, suffix: str):
    for batch in entry["batches"]:
        if "frame" not in batch.schema.names:
            continue
        frames = batch.column("frame").to_pylist()
        if frame in frames:
            name = next(n for n in batch.schema.names if n.endswith(suffix))
            return batch.column(name)[frames.index(frame)].as_py()
    raise KeyError(f"{suffix} at frame {frame}")


def test_session_recording_holds_entities_and_timeline(occ3d_data, tmp_path, capsys):
    reader = _rrd_reader()
    session = occ3d_data / "occ3d" / ROVER
    rrd = tmp_path / "rover.rrd"
    assert cli(["view", str(session), "--save", str(rrd), "--frames", "2:5"]) == 0
    assert "3 frame(s)" in capsys.readouterr().out and not (tmp_path / "rover.rrd.tmp").exists()
    rec = read_rrd(rrd, reader)
    timed = {"/session/ego", "/session/ego/occupancy", "/session/ego/agents", "/session/ego/lidar",
             "/session/ego/camera", "/session/ego/camera/image"}
    assert timed | {"/session/trajectory"} <= set(rec)
    for entity in timed:
        assert rec[entity]["frames"] == [2, 3, 4], entity
    with np.load(layout.occupancy_path(session, 3)) as npz:
        occ = npz["occupancy"]
    classes = _column(rec["/session/ego/occupancy"], 3, "class_ids")
    assert len(classes) == int((occ > 0).sum())
    assert np.array_equal(np.bincount(classes, minlength=14), np.bincount(occ[occ > 0], minlength=14))
    ids = _column(rec["/session/ego/occupancy"], 3, "instance_id")
    with np.load(layout.occupancy_path(session, 3)) as npz:
        inst = npz["instances"]
    assert sorted(ids) == sorted(inst[occ > 0].tolist())
    objects = json.loads(layout.annotation_path(session, 3).read_text())["objects"]
    labels = _column(rec["/session/ego/agents"], 3, "labels")
    assert sorted(labels) == sorted(f"{o['kind']} {o['id']}" for o in objects)
    pose = json.loads(layout.pose_path(session, 3).read_text())
    translation = _column(rec["/session/ego"], 3, "translation")
    assert np.allclose(translation, [pose["position"]["x"], pose["position"]["y"], pose["ground_height"]], atol=1e-4)


def test_view_refusals(occ3d_data, tmp_path, capsys):
    session = occ3d_data / "default" / "drone_20240101_120000"
    assert cli(["view", str(session), "--save", str(tmp_path / "x.rrd"), "--frames", "9:12"]) == 2
    assert "selects no frame" in capsys.readouterr().err and not list(tmp_path.iterdir())
    assert cli(["view", str(tmp_path / "nope"), "--save", str(tmp_path / "x.rrd")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert cli(["view", str(session), "--save", str(tmp_path / "x.txt")]) == 2
