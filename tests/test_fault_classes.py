"""One test per class of fault that issue 14 makes impossible (each small and fast):
folder claims, data checked before training, config ranges, checkpoint verification, best.pth/metrics repair,
an interrupted stage 1 refused by stage 2, shape-mismatched checkpoints, one-line exit 2 for user mistakes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from occworld_tokyo.config import ConfigError, load_config, validate_config, with_defaults
from occworld_tokyo.dataset import DataError, find_sessions
from occworld_tokyo.dataset.preflight import check_sessions
from occworld_tokyo.locks import FolderBusyError, claim_folder
from occworld_tokyo.model import CheckpointError, build_model, load_pretrained
from occworld_tokyo.sessions import layout
from occworld_tokyo.training import checkpoint as ckpt_io
from occworld_tokyo.training.policy import reconcile
from occworld_tokyo.training.resume import restore_model
from occworld_tokyo.training.stages import TrainingError, check_tokenizer_run_complete, stage_for
from test_dataset_sessions import write_sessions

ROOT = Path(__file__).resolve().parents[1]
TOK_CFG = ROOT / "config" / "tiny_test_vqvae.py"


# ------------------------------------------------------------------------------------------------ folder claims
def test_second_claim_on_a_folder_is_refused_and_released_after(tmp_path: Path) -> None:
    with claim_folder(tmp_path / "w", "training run"):
        with pytest.raises(FolderBusyError, match="in use by another run"):
            with claim_folder(tmp_path / "w", "training run"):
                pass
        # another process: train.py into the held work dir stops with exit 2 and one line
        proc = subprocess.run([sys.executable, "train.py", "--config", str(TOK_CFG), "--work-dir", str(tmp_path / "w"),
                               "--cfg-options", f"data_root={tmp_path / 'nodata'}"], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "in use by another run" in proc.stderr
    with claim_folder(tmp_path / "w", "training run"):
        pass
    assert list((tmp_path / "w").iterdir()) == []  # the claim writes nothing into the folder


def test_folder_claim_falls_back_to_a_lock_file_where_directories_cannot_be_locked(tmp_path: Path,
                                                                                    monkeypatch) -> None:
    """Some NFS mounts refuse flock on a directory: the claim then locks `<folder>/.occworld.lock`, same rules."""
    import errno
    import fcntl
    import os
    import stat

    from occworld_tokyo import locks

    real_flock = fcntl.flock

    def no_directory_locks(fd, op):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real_flock(fd, op)

    monkeypatch.setattr(locks.fcntl, "flock", no_directory_locks)
    with claim_folder(tmp_path / "w", "training run"):
        assert (tmp_path / "w" / locks.LOCK_NAME).is_file()
        with pytest.raises(FolderBusyError, match="in use by another run"):
            with claim_folder(tmp_path / "w", "training run"):
                pass
    with claim_folder(tmp_path / "w", "training run"):  # released with the block
        pass


def test_generation_into_a_folder_in_use_is_refused_untouched(tmp_path: Path, capsys) -> None:
    from occworld_tokyo.sessions.command import main as generate_main

    out = tmp_path / "data"
    with claim_folder(out, "session generation"):
        assert generate_main(["--output", str(out), "--frames", "2", "--sessions", "1", "--quiet"]) == 2
    assert "in use by another run" in capsys.readouterr().err
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("flag, value", [("--rate", "0"), ("--rate", "nan"), ("--rate", "1e6"), ("--frames", "0"),
                                         ("--vehicles", "-1"), ("--workers", "0")])
def test_generation_values_out_of_range_exit_2(flag: str, value: str, tmp_path: Path, capsys) -> None:
    from occworld_tokyo.sessions.command import main as generate_main

    with pytest.raises(SystemExit) as exc:
        generate_main(["--output", str(tmp_path / "d"), flag, value])
    assert exc.value.code == 2 and flag in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


# ------------------------------------------------------------------------------------------------ data checks
def _npz(path: Path, **arrays) -> None:
    with np.load(path) as npz:
        data = {k: npz[k] for k in npz.files}
    data.update(arrays)
    np.savez_compressed(path, **{k: v for k, v in data.items() if v is not None})


def _break_occupancy(path: Path, how: str) -> None:
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif how == "float labels":
        _npz(path, occupancy=np.zeros((200, 200, 121), np.float32))
    elif how == "wrong shape":
        _npz(path, occupancy=np.zeros((200, 200, 16), np.uint8))
    elif how == "label out of range":
        occ = np.zeros((200, 200, 121), np.uint8)
        occ[3, 4, 5] = 200
        _npz(path, occupancy=occ)
    elif how == "missing key":
        with np.load(path) as npz:
            data = {k: npz[k] for k in npz.files if k != "instances"}
        np.savez_compressed(path, **data)


@pytest.mark.parametrize("how, message", [
    ("truncated", "unreadable"), ("float labels", "dtype float32"), ("wrong shape", "shape (200, 200, 16)"),
    ("label out of range", "label id 200"), ("missing key", "missing key(s) ['instances']"),
    ("missing frame", "missing"), ("pose without orientation", "'orientation'"), ("pose not unit", "unit quaternion"),
])
def test_every_frame_is_checked_before_training(tmp_path: Path, how: str, message: str) -> None:
    root = write_sessions(tmp_path / "data", n_sessions=2, n_frames=4)
    sessions = find_sessions(root)
    assert "8 frames ok" in check_sessions(sessions, with_instances=True, visibility=None)
    bad = sessions[1].path
    occ, pose = layout.occupancy_path(bad, 2), layout.pose_path(bad, 2)
    if how == "missing frame":
        occ.unlink()
        target = occ
    elif how.startswith("pose"):
        record = json.loads(pose.read_text())
        if how == "pose without orientation":
            del record["orientation"]
        else:
            record["orientation"]["w"] = 3.0
        pose.write_text(json.dumps(record))
        target = pose
    else:
        _break_occupancy(occ, how)
        target = occ
    with pytest.raises(DataError) as exc:
        check_sessions(sessions, with_instances=True, visibility=None)
    text = str(exc.value)
    assert str(target) in text and message in text and "Fix:" in text and str(bad) in text


# ------------------------------------------------------------------------------------------------ config
@pytest.mark.parametrize("key, value, message", [
    ("grad_clip", {"max_norm": -1.0}, "grad_clip.max_norm = -1.0 must be in (0,"),
    ("data", {"val_fraction": 1.5}, "data.val_fraction = 1.5 must be in (0, 1)"),
    ("log_config", {"interval": 0}, "log_config.interval = 0 must be in [1,"),
    ("optimizer", {"lr": float("nan")}, "optimizer.lr = nan"),
    ("data", {"workers_per_gpu": 2.5}, "must be an integer"),
    ("point_cloud_range", [0, 0, 0, -1, 1, 1], "each min < max"),
    ("evaluation", {"visibility": "radar"}, "evaluation.visibility"),
    ("seed", -3, "seed = -3"),
])
def test_every_value_is_range_checked(key: str, value, message: str) -> None:
    cfg = load_config(TOK_CFG)
    cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    with pytest.raises(ConfigError) as exc:
        validate_config(cfg, source="x.py")
    assert message in str(exc.value)


def test_defaults_come_from_the_settings_table() -> None:
    cfg = with_defaults({"data": {"samples_per_gpu": 3}})
    assert cfg["data"] == {**cfg["data"], "samples_per_gpu": 3, "workers_per_gpu": 4, "val_fraction": 0.2}
    assert cfg["grad_clip"]["max_norm"] == 35.0 and cfg["seed"] == 42 and cfg["log_config"]["interval"] == 10


def test_frame_counts_are_declared_once(tmp_path: Path) -> None:
    cfg = load_config(ROOT / "config" / "tiny_test_finetune.py")
    assert cfg["model"]["history_frames"] == cfg["history_frames"] == 2
    assert cfg["model"]["vae"]["num_classes"] == cfg["num_classes"] == 14
    bad = tmp_path / "bad.py"
    bad.write_text(f"_base_ = ['{ROOT / 'config/tiny_test_finetune.py'}']\nmodel = dict(history_frames=3)\n")
    with pytest.raises(ConfigError, match="declare history_frames once, at the top level"):
        load_config(bad)


def test_config_that_raises_is_one_line_exit_2(tmp_path: Path, capsys) -> None:
    from occworld_tokyo.training.cli import main

    bad = tmp_path / "raises.py"
    bad.write_text("data_root = 'x'\nimport os\nvalue = 1 / 0\n")
    assert main(["--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}:3" in err and "ZeroDivisionError" in err and "Python code" in err
    assert "Traceback" not in err


def test_every_command_answers_a_user_mistake_with_one_line(tmp_path: Path, capsys) -> None:
    from occworld_tokyo.cli import main

    bad = tmp_path / "raises.py"
    bad.write_text("model = dict(type='VAERes2D')\nraise ValueError('no such setting')\n")
    assert main(["model", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}:2" in err and "no such setting" in err
    assert main(["forecast", "--checkpoint", str(tmp_path / "none.pth"), "--session", str(tmp_path),
                 "--out", str(tmp_path / "o")]) == 2
    assert "none.pth does not exist" in capsys.readouterr().err


def test_seed_flag_does_not_overwrite_the_config_seed(tmp_path: Path) -> None:
    from occworld_tokyo.training.cli import build_parser, resolve_config

    cfg_file = tmp_path / "s.py"
    cfg_file.write_text(f"_base_ = ['{TOK_CFG}']\nseed = 7\n")
    assert resolve_config(build_parser().parse_args(["--config", str(cfg_file)]))["seed"] == 7
    assert resolve_config(build_parser().parse_args(["--config", str(cfg_file), "--seed", "3"]))["seed"] == 3


# ------------------------------------------------------------------------------------------------ checkpoints
def _tokenizer():
    return build_model(load_config(TOK_CFG)["model"])


def _payload(model, epoch: int, it: int, **extra) -> dict:
    return {"state_dict": model.state_dict(), "optimizer": {}, "scheduler": {}, "epoch": epoch, "global_iter": it,
            "stage": "tokenizer", **extra}


def test_corrupt_tensors_and_checksum_are_refused_before_use(tmp_path: Path) -> None:
    model = _tokenizer()
    good = ckpt_io.save_checkpoint(tmp_path / "good.pth", _payload(model, 1, 5))
    ckpt = torch.load(good, weights_only=True)
    assert ckpt["checksum"] == ckpt_io.state_checksum(model.state_dict())
    ckpt_io.load_checkpoint(good)
    # bytes changed after writing (the stored checksum no longer matches)
    name = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point())
    ckpt["state_dict"][name] = ckpt["state_dict"][name] + 1.0
    torch.save(ckpt, tmp_path / "changed.pth")
    with pytest.raises(CheckpointError, match="checksum"):
        ckpt_io.load_checkpoint(tmp_path / "changed.pth")
    # NaN weights: refused by both readers (training resume and load_pretrained)
    state = model.state_dict()
    state[name] = torch.full_like(state[name], float("nan"))
    torch.save({"state_dict": state}, tmp_path / "nan.pth")
    for read in (ckpt_io.load_checkpoint, lambda p: load_pretrained(_tokenizer(), p, log=lambda *_: None)):
        with pytest.raises(CheckpointError, match="non-finite"):
            read(tmp_path / "nan.pth")
    (tmp_path / "cut.pth").write_bytes(good.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="damaged"):
        ckpt_io.load_checkpoint(tmp_path / "cut.pth")


def test_shape_mismatched_checkpoint_is_one_message(tmp_path: Path) -> None:
    cfg = load_config(TOK_CFG)
    cfg["model"]["vae"]["n_e"] = 16
    other = build_model(cfg["model"])
    model = _tokenizer()
    with pytest.raises(TrainingError, match=r"1 of another shape.*vqvae.embedding.weight \[16, 8\] in the file vs "
                                            r"\[32, 8\]"):
        restore_model(model, _payload(other, 1, 1), tmp_path / "x.pth", stage_for(model))


def test_best_and_metrics_are_rebuilt_after_an_interruption(tmp_path: Path) -> None:
    model = _tokenizer()
    m1 = {"val_loss": 2.0, "epoch": 1, "is_best": True}
    m2 = {"val_loss": 1.0, "epoch": 2, "is_best": True}
    ckpt_io.save_checkpoint(tmp_path / "epoch_1.pth", _payload(model, 1, 5, best_epoch=1, metrics_json=json.dumps(m1)))
    ckpt_io.copy_checkpoint(tmp_path / "epoch_1.pth", tmp_path / "best.pth")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "epoch_1.json").write_text(json.dumps(m1))
    # killed after epoch_2.pth was written, before best.pth and the metrics file
    e2 = _payload(model, 2, 10, best_epoch=2, metrics_json=json.dumps(m2))
    ckpt_io.save_checkpoint(tmp_path / "epoch_2.pth", e2)
    repaired = reconcile(tmp_path, e2, log=lambda *_: None)
    assert len(repaired) == 2
    assert ckpt_io.checkpoint_position(tmp_path / "best.pth") == (2, 10)
    assert json.loads((tmp_path / "metrics" / "epoch_2.json").read_text()) == m2
    assert reconcile(tmp_path, e2, log=lambda *_: None) == []  # now everything agrees


def test_stage2_refuses_a_tokenizer_of_an_unfinished_run(tmp_path: Path) -> None:
    model = _tokenizer()
    cfg_json = json.dumps({"max_epochs": 4})
    ckpt_io.save_checkpoint(tmp_path / "best.pth", _payload(model, 2, 10, config_json=cfg_json))
    with pytest.raises(TrainingError, match=r"has not finished \(epoch 2 of 4\).*--resume"):
        check_tokenizer_run_complete(tmp_path / "best.pth")
    ckpt_io.save_checkpoint(tmp_path / "best.pth", _payload(model, 4, 20, config_json=cfg_json, run_complete=True))
    check_tokenizer_run_complete(tmp_path / "best.pth")
