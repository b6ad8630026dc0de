"""Plan files (`forecast --plan FILE`): frames, units and clear refusals."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from occworld_tokyo.dataset.plan_file import PlanFileError, read_plan, waypoints_to_poses


def _record(x: float, y: float, yaw: float, vx: float = 0.0, vy: float = 0.0) -> dict:
    return {"position": {"x": x, "y": y, "z": 5.0},
            "orientation": {"x": 0.0, "y": 0.0, "z": math.sin(yaw / 2), "w": math.cos(yaw / 2)},
            "velocity": {"linear": {"x": vx, "y": vy, "z": 0.0}, "angular": {"x": 0.0, "y": 0.0, "z": 0.0}}}


HISTORY = [_record(100.0, 200.0, math.pi / 2), _record(100.0, 201.0, math.pi / 2, vy=2.0)]  # facing world +y


def test_waypoints_are_in_the_current_ego_frame_at_the_session_rate(tmp_path):
    f = tmp_path / "plan.json"
    f.write_text(json.dumps({"frame": "ego", "waypoints": [[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [2.0, 1.0, 0.0]]}))
    poses = read_plan(f, HISTORY, 3, rate_hz=2.0)
    assert poses.shape == (3, 13) and poses.dtype == np.float32
    assert np.allclose(poses[:, :3], [[1, 0, 0], [2, 0, 0], [2, 1, 0]])
    assert np.allclose(poses[:2, 7:10], [[2.0, 0, 0], [2.0, 0, 0]])          # 1 m per 0.5 s frame = 2 m/s
    yaw = 2 * np.arctan2(poses[:, 5], poses[:, 6])
    assert np.allclose(yaw, [0.0, 0.0, np.pi / 2], atol=1e-6)                 # heading along each step
    assert poses[2, 12] == pytest.approx(np.pi / 2 * 2.0)                     # 90 deg in one 0.5 s frame


def test_world_poses_become_relative_to_the_current_frame(tmp_path):
    # 2 m further along world +y = 2 m forward for an agent facing +y; the world -x velocity is to its left
    f = tmp_path / "plan.json"
    f.write_text(json.dumps({"frame": "world", "poses": [_record(100.0, 203.0, math.pi / 2, vx=-1.0)]}))
    poses = read_plan(f, HISTORY, 1, rate_hz=2.0)
    assert np.allclose(poses[0, :3], [2.0, 0.0, 0.0], atol=1e-5)
    assert np.allclose(poses[0, 7:10], [0.0, 1.0, 0.0], atol=1e-5)
    f.write_text(json.dumps([_record(100.0, 203.0, math.pi / 2)]))           # a bare list reads the same
    assert np.allclose(read_plan(f, HISTORY, 1, 2.0)[0, :3], [2.0, 0.0, 0.0], atol=1e-5)


def test_waypoint_poses_match_the_world_form_of_the_same_path():
    pts = np.array([[1.0, 0.0, 0.0], [1.5, 0.8, 0.0]])
    ego = waypoints_to_poses(pts, 2.0)
    assert np.allclose(np.linalg.norm(ego[:, 3:7], axis=1), 1.0)
    assert np.allclose(ego[1, 7:9], (pts[1, :2] - pts[0, :2]) * 2.0)


@pytest.mark.parametrize("doc, message", [
    ({"frame": "ego", "waypoints": [[1, 0, 0]]}, "1 waypoints but the model forecasts 2 frames"),
    ({"frame": "ego", "waypoints": [[1, 0], [2, 0, 0]]}, r"waypoints\[0\]"),
    ({"frame": "map", "waypoints": []}, '"frame": "ego"'),
    ({"frame": "world", "poses": [{"position": {"x": 1, "y": 2, "z": 3}}, {}]}, r"poses\[0\] lacks"),
    ({"frame": "world", "poses": [dict(_record(1, 2, 0), orientation={"x": 0, "y": 0, "z": 0, "w": 2}),
                                  _record(1, 2, 0)]}, "not a unit quaternion"),
])
def test_bad_plan_files_name_the_file_and_the_entry(tmp_path, doc, message):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(PlanFileError, match=message) as info:
        read_plan(f, HISTORY, 2, 2.0)
    assert str(f) in str(info.value)


def test_missing_and_broken_plan_files(tmp_path):
    with pytest.raises(PlanFileError, match="does not exist"):
        read_plan(tmp_path / "none.json", HISTORY, 2, 2.0)
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(PlanFileError, match="not readable JSON"):
        read_plan(tmp_path / "x.json", HISTORY, 2, 2.0)
