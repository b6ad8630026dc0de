"""Session layout, writer and validator: what a user of the data folder relies on."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from occworld_tokyo.grid import DEFAULT_GRID
from occworld_tokyo.sessions import layout, writer
from occworld_tokyo.sessions.command import main as generate_main
from occworld_tokyo.sessions.generate import GenerationError, GenerationSpec, check_output_dir
from occworld_tokyo.sessions.validate import main as validate_main, validate
from occworld_tokyo.trajectories.trajectory import Trajectory


def _straight_trajectory(n: int, rate: float = 2.0) -> Trajectory:
    t = np.arange(n) / rate
    pos = np.stack([3.0 * t, np.zeros(n), np.full(n, 1.0)], axis=1)
    quat = np.tile([0.0, 0.0, 0.0, 1.0], (n, 1))
    vel = np.tile([3.0, 0.0, 0.0], (n, 1))
    return Trajectory("rover", t, pos, quat, vel, np.zeros((n, 3)), np.zeros(n), pattern="street")


def _write_session(root: Path, name: str, n: int = 3, sensors: bool = True) -> Path:
    traj = _straight_trajectory(n)
    tmp = writer.make_session_tmp(root, name)
    rng = np.random.default_rng(0)
    for i in range(n):
        occ = np.zeros(DEFAULT_GRID.shape, np.uint8)
        occ[:, :, 0] = 6  # terrain layer
        occ[100:110, 100:110, 1:20] = 1  # a building
        inst = np.where(occ == 1, 7, 0).astype(np.int32)
        data = writer.FrameData(occupancy=occ, instances=inst, ground_height=0.0, annotations=[])
        if sensors:
            data.mask_lidar = occ > 0
            data.mask_camera = occ > 0
            data.lidar = rng.normal(size=(50, 4)).astype(np.float32)
            rgb = np.zeros((900, 1600, 3), np.uint8)
            import io
            buf = io.BytesIO()
            Image.fromarray(rgb).save(buf, format="JPEG")
            data.image_jpeg = buf.getvalue()
        writer.write_frame(tmp, i, traj, data)
    meta = {"agent_type": "rover", "n_frames": n, "rate_hz": 2.0, "grid": DEFAULT_GRID.to_dict(),
            "labels": [], "sensors": {"lidar": {}, "camera": {}} if sensors else None}
    writer.finish_session(tmp, root / name, meta)
    return root / name


def test_guide_file_names():
    s = Path("drone_20240101_120000")
    assert layout.occupancy_path(s, 0).as_posix() == "drone_20240101_120000/occupancy/000000_occupancy.npz"
    assert layout.pose_path(s, 12).as_posix() == "drone_20240101_120000/poses/000012.json"
    assert layout.lidar_path(s, 0).as_posix() == "drone_20240101_120000/lidar/000000_LIDAR.npy"
    assert layout.image_path(s, 0).as_posix() == "drone_20240101_120000/images/000000_CAM_FRONT.jpg"


def test_session_names_are_deterministic_and_unique():
    start = datetime(2024, 1, 1, 12, 0, 0)
    names = layout.planned_session_names(["drone", "rover", "drone"], start, 100.0)
    assert names == ["drone_20240101_120000", "rover_20240101_120140", "drone_20240101_120320"]
    same_second = layout.planned_session_names(["drone", "drone", "drone"], start, 0.2)  # starts 0, 1, 1 s
    assert same_second == ["drone_20240101_120000", "drone_20240101_120001", "drone_20240101_120001_1"]
    assert all(layout.SESSION_RE.match(n) for n in names + same_second)


def test_written_session_validates_and_pose_schema(tmp_path, capsys):
    session = _write_session(tmp_path, "rover_20240101_120000")
    pose = json.loads(layout.pose_path(session, 1).read_text())
    assert set(pose) == {"timestamp", "frame", "agent_type", "position", "orientation", "velocity", "ground_height"}
    assert pose["timestamp"] == 0.5 and pose["frame"] == 1
    assert pose["velocity"]["linear"] == {"x": 3.0, "y": 0.0, "z": 0.0}
    with np.load(layout.occupancy_path(session, 0)) as npz:
        assert set(npz.files) == {"occupancy", "instances", "mask_lidar", "mask_camera"}
        assert npz["occupancy"].shape == (200, 200, 121) and npz["occupancy"].dtype == np.uint8
    assert validate_main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "rover_20240101_120000" in out and "0 problem(s)" in out


@pytest.mark.parametrize("damage, expected", [
    ("drop_frame", "frames must be continuous"),
    ("bad_shape", "has shape"),
    ("bad_pose", "missing field 'orientation'"),
    ("bad_time", "timestamp step"),
    ("missing_image", "missing camera image"),
])
def test_validator_names_the_problem(tmp_path, capsys, damage, expected):
    session = _write_session(tmp_path, "rover_20240101_120000")
    if damage == "drop_frame":
        layout.occupancy_path(session, 1).unlink()
    elif damage == "bad_shape":
        np.savez_compressed(layout.occupancy_path(session, 2), occupancy=np.zeros((200, 200, 16), np.uint8),
                            instances=np.zeros((200, 200, 16), np.int32),
                            mask_lidar=np.zeros((200, 200, 16), bool), mask_camera=np.zeros((200, 200, 16), bool))
    elif damage == "bad_pose":
        p = layout.pose_path(session, 2)
        pose = json.loads(p.read_text())
        del pose["orientation"]
        p.write_text(json.dumps(pose))
    elif damage == "bad_time":
        p = layout.pose_path(session, 2)
        pose = json.loads(p.read_text())
        pose["timestamp"] = 5.0
        p.write_text(json.dumps(pose))
    elif damage == "missing_image":
        layout.image_path(session, 0).unlink()
    assert validate_main([str(tmp_path)]) == 1
    assert expected in capsys.readouterr().out


def test_validator_reports_unfinished_and_empty_folders(tmp_path, capsys):
    assert validate_main([str(tmp_path)]) == 1
    assert "no complete session folders" in capsys.readouterr().out
    _write_session(tmp_path, "drone_20240101_120000", sensors=False)
    writer.make_session_tmp(tmp_path, "drone_20240101_120140")
    checks, problems = validate(tmp_path)
    assert len(checks) == 1 and not checks[0].problems
    assert any("unfinished session" in p for p in problems)


def test_finish_session_never_overwrites(tmp_path):
    _write_session(tmp_path, "rover_20240101_120000", n=1, sensors=False)
    tmp = writer.make_session_tmp(tmp_path, "rover_20240101_120000")
    with pytest.raises(FileExistsError):
        writer.finish_session(tmp, tmp_path / "rover_20240101_120000", {"n_frames": 0})
    assert (tmp_path / "rover_20240101_120000" / "meta.json").is_file()


def test_output_folder_with_other_things_is_refused(tmp_path, capsys):
    (tmp_path / "my_thesis.tex").write_text("precious")
    with pytest.raises(GenerationError, match="my_thesis.tex"):
        check_output_dir(tmp_path)
    assert generate_main(["--output", str(tmp_path), "--frames", "2", "--sessions", "1", "--quiet"]) == 2
    assert "not sessions" in capsys.readouterr().err
    assert (tmp_path / "my_thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_thesis.tex"]


@pytest.mark.parametrize("kwargs, message", [
    ({"frames": 0}, "--frames"), ({"sessions": 0}, "--sessions"), ({"agent": "boat"}, "--agent"),
    ({"shard": (2, 2)}, "--shard"), ({"start_time": "yesterday"}, "--start-time"), ({"rate_hz": 0}, "--rate"),
])
def test_bad_generation_arguments(kwargs, message):
    with pytest.raises(GenerationError, match=message):
        GenerationSpec(**kwargs)


def test_missing_input_names_the_fix(tmp_path, capsys):
    assert generate_main(["--input", str(tmp_path / "nope"), "--output", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "omit --input" in err
    assert not (tmp_path / "out").exists()


def test_npz_bytes_is_a_standard_npz_at_the_chosen_level():
    import io

    rng = np.random.default_rng(0)
    arrays = {"occupancy": (rng.random((200, 200, 121)) < 0.05).astype(np.uint8) * 3,
              "instances": np.arange(200 * 200 * 121, dtype=np.int32).reshape(200, 200, 121) // 9999,
              "mask_lidar": rng.random((200, 200, 121)) < 0.3}
    fast, small = writer.npz_bytes(arrays, 1), writer.npz_bytes(arrays, 9)
    for blob in (fast, small):
        with np.load(io.BytesIO(blob)) as npz:
            assert set(npz.files) == set(arrays)
            for k, v in arrays.items():
                assert npz[k].dtype == v.dtype and np.array_equal(npz[k], v)
    assert len(small) < len(fast), "the deflate level is honoured"
    assert writer.npz_bytes(arrays) == writer.npz_bytes(arrays), "deterministic bytes"
