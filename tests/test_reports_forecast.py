"""The forecast command: pose inversion, files in the data format, pictures, and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from occworld_tokyo.config import load_config
from occworld_tokyo.dataset.poses import pose_arrays, poses_to_world, relative_poses
from occworld_tokyo.rotations import quat_yaw
from occworld_tokyo.grid import EgoFrame
from occworld_tokyo.reports.forecast import main as forecast_main
from occworld_tokyo.sessions import layout

ROOT = Path(__file__).resolve().parents[1]


def _records(n: int, rng: np.random.Generator) -> list[dict]:
    out = []
    for i in range(n):
        yaw, pitch = rng.uniform(-np.pi, np.pi), rng.uniform(-0.2, 0.2)
        q = np.array([0.0, np.sin(pitch / 2), 0.0, np.cos(pitch / 2)])  # pitch, then yaw on the left
        qy = np.array([0.0, 0.0, np.sin(yaw / 2), np.cos(yaw / 2)])
        x1, y1, z1, w1 = qy
        x2, y2, z2, w2 = q
        quat = [w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2, w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2, w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2]
        v = rng.normal(size=3)
        w = rng.normal(size=3)
        p = rng.normal(size=3) * 50
        out.append({"position": dict(zip("xyz", p)), "orientation": dict(zip("xyzw", quat)),
                    "velocity": {"linear": dict(zip("xyz", v)), "angular": dict(zip("xyz", w))},
                    "ground_height": 3.0})
    return out


def test_poses_to_world_inverts_relative_poses():
    arrays = pose_arrays(_records(6, np.random.default_rng(0)))
    current = 3
    rel = relative_poses(arrays, current)
    yaw = float(quat_yaw(arrays["quat"][current]))
    frame = EgoFrame(arrays["position"][current, 0], arrays["position"][current, 1], yaw, 0.0)
    back = poses_to_world(rel, frame, float(arrays["position"][current, 2]))
    assert np.allclose(back["position"], arrays["position"], atol=1e-3)
    assert np.allclose(back["lin_vel"], arrays["lin_vel"], atol=1e-4)
    assert np.allclose(back["ang_vel"], arrays["ang_vel"], atol=1e-4)
    same = np.abs(np.sum(back["quat"] * arrays["quat"], axis=1))  # q and -q are the same rotation
    assert np.allclose(same, 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def session_and_checkpoint(tmp_path_factory):
    from occworld_tokyo.model import build_model
    from occworld_tokyo.sessions.generate import GenerationSpec, generate_sessions
    from occworld_tokyo.training.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("forecast")
    report = generate_sessions(root / "data", spec=GenerationSpec(frames=12, sessions=1, agent="rover", sensors=False),
                               progress=False)
    cfg = load_config(ROOT / "config" / "tiny_finetune.py")
    torch.manual_seed(0)
    model = build_model(cfg["model"])
    ckpt = save_checkpoint(root / "best.pth", {"state_dict": model.state_dict(), "optimizer": {}, "scheduler": {},
                                              "epoch": 1, "global_iter": 1, "config_json": json.dumps(cfg)})
    tok_cfg = load_config(ROOT / "config" / "tiny_vqvae.py")
    tok = save_checkpoint(root / "tokenizer.pth", {"state_dict": build_model(tok_cfg["model"]).state_dict(),
                                                  "optimizer": {}, "scheduler": {}, "epoch": 1, "global_iter": 1,
                                                  "config_json": json.dumps(tok_cfg)})
    return root / "data" / report.written[0], ckpt, tok, cfg


def test_forecast_writes_frames_poses_and_pictures(tmp_path, session_and_checkpoint, capsys):
    session, ckpt, _, cfg = session_and_checkpoint
    out = tmp_path / "fc"
    assert forecast_main(["--checkpoint", str(ckpt), "--session", str(session), "--start", "2", "--out", str(out)]) == 0
    H = cfg["history_frames"]
    frames = list(range(2 + H, 2 + H + 6))  # history H from frame 2, then 6 predicted frames
    for f in frames:
        with np.load(layout.occupancy_path(out, f)) as npz:
            assert npz["occupancy"].shape == tuple(cfg["model"]["vae"]["grid_size"]) and npz["occupancy"].dtype == np.uint8
        pose = json.loads(layout.pose_path(out, f).read_text())
        truth = json.loads(layout.pose_path(session, f).read_text())
        assert pose["frame"] == f and pose["timestamp"] == truth["timestamp"] and pose["predicted"] is True
        q = np.array([pose["orientation"][k] for k in "xyzw"])
        assert abs(np.linalg.norm(q) - 1) < 1e-6
    for name in ("forecast_bev.png", "forecast_side.png", "forecast.gif"):
        assert (out / name).stat().st_size > 500
    assert json.loads((out / "meta.json").read_text())["frames"] == frames


def test_forecast_past_the_end_has_no_ground_truth_pictures(tmp_path, session_and_checkpoint):
    session, ckpt, _, cfg = session_and_checkpoint
    out = tmp_path / "fc"
    assert forecast_main(["--checkpoint", str(ckpt), "--session", str(session), "--start", "8", "--out", str(out)]) == 0
    assert (out / "forecast.gif").is_file() and not (out / "forecast_bev.png").exists()
    assert layout.occupancy_path(out, 8 + cfg["history_frames"] + 5).is_file()


def test_forecast_refusals(tmp_path, session_and_checkpoint, capsys):
    session, ckpt, tok, cfg = session_and_checkpoint
    assert forecast_main(["--checkpoint", str(tok), "--session", str(session), "--out", str(tmp_path)]) == 2
    assert "world-model checkpoint" in capsys.readouterr().err
    last = 12 - cfg["history_frames"]
    assert forecast_main(["--checkpoint", str(ckpt), "--session", str(session), "--start", str(last + 1),
                          "--out", str(tmp_path)]) == 2
    assert f"--start must be in 0..{last}" in capsys.readouterr().err
    assert forecast_main(["--checkpoint", str(tmp_path / "nope.pth"), "--session", str(session), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_forecast_along_a_plan_file_and_the_recorded_path(tmp_path, session_and_checkpoint):
    session, ckpt, _, cfg = session_and_checkpoint
    cur_frame = 2 + cfg["history_frames"] - 1
    plan = tmp_path / "plan.json"
    waypoints = [[1.0 * (k + 1), 0.2 * k, 0.0] for k in range(6)]
    plan.write_text(json.dumps({"frame": "ego", "waypoints": waypoints}))
    out = tmp_path / "planned"
    assert forecast_main(["--checkpoint", str(ckpt), "--session", str(session), "--start", "2", "--plan", str(plan),
                          "--out", str(out)]) == 0
    # the written poses are the plan's, in the world frame: waypoint 1 m ahead of the current frame's pose
    cur = json.loads(layout.pose_path(session, cur_frame).read_text())
    first = json.loads(layout.pose_path(out, cur_frame + 1).read_text())
    yaw = float(quat_yaw(np.array([cur["orientation"][k] for k in "xyzw"])))
    expected = np.array([cur["position"]["x"] + np.cos(yaw), cur["position"]["y"] + np.sin(yaw)])
    assert np.allclose([first["position"]["x"], first["position"]["y"]], expected, atol=1e-3)
    assert first["predicted"] is False and json.loads((out / "meta.json").read_text())["plan"] == str(plan)
    assert not (out / "forecast_bev.png").exists()  # no ground truth along an invented path
    rec = tmp_path / "recorded"
    assert forecast_main(["--checkpoint", str(ckpt), "--session", str(session), "--start", "2", "--plan", "recorded",
                          "--out", str(rec)]) == 0
    truth = json.loads(layout.pose_path(session, 7).read_text())
    got = json.loads(layout.pose_path(rec, 7).read_text())
    assert np.allclose([got["position"][k] for k in "xyz"], [truth["position"][k] for k in "xyz"], atol=1e-3)
    assert (rec / "forecast_bev.png").is_file()


def test_forecast_plan_refusals(tmp_path, session_and_checkpoint, capsys):
    session, ckpt, _, cfg = session_and_checkpoint
    plan = tmp_path / "short.json"
    plan.write_text(json.dumps({"frame": "ego", "waypoints": [[1.0, 0.0, 0.0]]}))
    args = ["--checkpoint", str(ckpt), "--session", str(session), "--out", str(tmp_path / "o")]
    assert forecast_main(args + ["--plan", str(plan)]) == 2
    err = capsys.readouterr().err
    assert str(plan) in err and "1 waypoints but the model forecasts 6 frames" in err
    assert forecast_main(args + ["--start", "8", "--plan", "recorded"]) == 2
    assert "recorded future" in capsys.readouterr().err
    # a model trained without plan conditioning refuses --plan
    from occworld_tokyo.model import build_model
    from occworld_tokyo.training.checkpoint import save_checkpoint

    plain_cfg = json.loads(json.dumps(cfg))
    plain_cfg["model"]["plan"]["enabled"] = False
    plain = save_checkpoint(tmp_path / "plain.pth", {"state_dict": build_model(plain_cfg["model"]).state_dict(),
                                                    "optimizer": {}, "scheduler": {}, "epoch": 1, "global_iter": 1,
                                                    "config_json": json.dumps(plain_cfg)})
    assert forecast_main(["--checkpoint", str(plain), "--session", str(session), "--out", str(tmp_path / "p"),
                          "--plan", "recorded"]) == 2
    assert "plan-conditioned" in capsys.readouterr().err
