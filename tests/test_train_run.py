"""End-to-end training runs on a tiny CPU config (config/tiny_test_*.py) over hand-written sessions:
outputs and checkpoint contents, stage 2 on the trained tokenizer with the baselines, eval-only refusing an
untrained model, a NaN stop, kill-and-resume equivalence, and a 2-process gloo run through torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from occworld_tokyo.training.checkpoint import checkpoint_position, load_checkpoint
from test_dataset_sessions import write_sessions

ROOT = Path(__file__).resolve().parents[1]
TOK_CFG = "config/tiny_test_vqvae.py"
WM_CFG = "config/tiny_test_finetune.py"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return write_sessions(tmp_path_factory.mktemp("data") / "tokyo", n_sessions=3, n_frames=10)


def _cmd(config: str, work_dir: Path, data_root: Path, *extra: str, options: tuple[str, ...] = ()) -> list[str]:
    return [sys.executable, "train.py", "--config", config, "--work-dir", str(work_dir), *extra,
            "--cfg-options", f"data_root={data_root}", *options]


def _env(threads: int = 2) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}


def train(config: str, work_dir: Path, data_root: Path, *extra: str, options: tuple[str, ...] = (),
          expect: int = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run(_cmd(config, work_dir, data_root, *extra, options=options), cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == expect, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def tokenizer_run(tmp_path_factory, data_root: Path) -> Path:
    work = tmp_path_factory.mktemp("run") / "ckpt"
    train(TOK_CFG, work / "tokenizer", data_root)
    return work


def test_stage1_outputs_and_checkpoint_contents(tokenizer_run: Path) -> None:
    tok = tokenizer_run / "tokenizer"
    assert {p.name for p in tok.glob("*.pth")} == {"epoch_1.pth", "epoch_2.pth", "best.pth"}
    assert list(tok.glob("train_*.log")) and list((tok / "logs").glob("events.out.tfevents.*"))
    ckpt = load_checkpoint(tok / "epoch_2.pth")  # weights_only=True
    for key in ("state_dict", "optimizer", "scheduler", "epoch", "global_iter", "iter_in_epoch", "scaler", "rng",
                "best_val_loss", "stage", "meta"):
        assert key in ckpt, key
    assert ckpt["epoch"] == 2 and ckpt["stage"] == "tokenizer" and ckpt["global_iter"] == 2 * 10  # 20 train frames / batch 2
    assert not any(k.startswith("module.") for k in ckpt["state_dict"])
    assert ckpt["meta"]["tokenizer_grid"] == [32, 32, 16, 14]
    assert ckpt["scheduler"]["step_count"] == ckpt["global_iter"]
    m = json.loads((tok / "metrics" / "epoch_2.json").read_text())
    assert m["epoch"] == 2 and m["val_loss"] > 0 and 0 <= m["recon"]["iou"] <= 1
    assert m["codebook"]["n_e"] == 32 and 1 <= m["codebook"]["codes_used"] <= 32
    assert 1.0 <= m["codebook"]["code_perplexity"] <= m["codebook"]["codes_used"] + 1e-6
    # the config restarts dead codes every 3 steps: counts since the last restart (step 18) travel in the file
    assert ckpt["vq_code_counts"].shape == (32,) and ckpt["vq_code_counts"].sum() == 2 * 2 * 16 * 16
    log = next(tok.glob("train_*.log")).read_text()
    assert "codes_restarted" in log and "codes_used" in log and "of 32 codes used" in log
    # OpenMP threads sleep instead of spinning (set by train.py before torch loads; docs/training.md)
    assert "OMP_WAIT_POLICY=PASSIVE" in log and "data check: 3 session(s), 30 frames ok" in log
    best = load_checkpoint(tok / "best.pth")
    assert best["best_val_loss"] == min(json.loads((tok / "metrics" / f"epoch_{e}.json").read_text())["val_loss"]
                                        for e in (1, 2))
    # best.pth and the metrics agree; the finished run marks its best.pth complete (stage 2 requires it)
    assert best["epoch"] == m["best_epoch"] and best["run_complete"] is True and "run_complete" not in ckpt
    assert best["checksum"] == ckpt["checksum"] if m["best_epoch"] == 2 else True


def test_stage2_needs_trained_tokenizer(tmp_path: Path, data_root: Path) -> None:
    proc = train(WM_CFG, tmp_path / "w", data_root, expect=2)
    assert "tokenizer" in proc.stderr and "vqvae_tokyo.py" in proc.stderr


def test_stage2_trains_and_reports_baselines(tokenizer_run: Path, data_root: Path) -> None:
    proc = train(WM_CFG, tokenizer_run, data_root, options=("max_epochs=1",))
    assert "trained tokenizer loaded" in proc.stderr
    m = json.loads((tokenizer_run / "metrics" / "epoch_1.json").read_text())
    # config/tiny_finetune.py (inherited) is plan-conditioned: both modes are scored
    assert set(m["forecast"]) == {"world_model", "world_model_plan", "copy_last", "ego_warp", "ego_warp_fill",
                                  "world_model_plan+voxel_copy", "world_model+unseen_prior"}  # + the hand-made
    assert m["forecast"]["copy_last"]["iou"][0] is not None and "vpq" in m and "planning" in m
    assert "frame codes cached" in proc.stderr  # the frozen tokenizer encoded each training frame once
    assert set(m["planning"]) == {"world_model", "constant_velocity", "stationary"}
    ckpt = load_checkpoint(tokenizer_run / "best.pth")
    assert ckpt["stage"] == "world_model" and any(k.startswith("vae.") for k in ckpt["state_dict"])
    # eval-only on the work dir's best.pth
    train(WM_CFG, tokenizer_run, data_root, "--eval-only")
    assert (tokenizer_run / "metrics" / "eval_best.json").is_file()
    # the tokenizer checkpoint is the wrong file for the world model: refused by name
    proc = train(WM_CFG, tokenizer_run, data_root, "--eval-only", "--resume-from",
                 str(tokenizer_run / "tokenizer" / "best.pth"), expect=2)
    assert "tokenizer checkpoint" in proc.stderr


def test_eval_only_refuses_untrained_model(tmp_path: Path, data_root: Path) -> None:
    proc = train(TOK_CFG, tmp_path / "empty", data_root, "--eval-only", expect=2)
    assert "untrained model is never evaluated" in proc.stderr
    assert not (tmp_path / "empty" / "metrics").exists()


def test_nan_loss_stops_with_step_named(tmp_path: Path, data_root: Path) -> None:
    # optimizer.lr is capped at 10 (settings), so the divergence comes from the start weights instead: finite
    # (the checkpoint reader accepts them) but so large that the first forward pass overflows
    from occworld_tokyo.config import load_config
    from occworld_tokyo.model import build_model

    model = build_model(load_config(ROOT / TOK_CFG)["model"])
    huge = tmp_path / "huge.pth"
    torch.save({k: v * 1e30 if v.is_floating_point() else v for k, v in model.state_dict().items()}, huge)
    work = tmp_path / "nan"
    proc = train(TOK_CFG, work, data_root, options=("max_epochs=3", f"load_from={huge}"), expect=3)
    assert "global step 1" in proc.stderr and "last good checkpoint" in proc.stderr
    assert not list(work.glob("*.pth"))  # nothing is written after a non-finite loss


def test_kill_and_resume_gives_same_weights(tmp_path: Path, data_root: Path) -> None:
    # dead-code restarts every 5 steps: a kill after step 12 resumes with the counts of steps 11-12 (from the file)
    opts = ("max_epochs=2", "checkpoint_config.interval_iters=2", "data.workers_per_gpu=1",
            "evaluation.interval=2", "evaluation.max_samples=2", "model.vae.dead_code_restart.every=5")
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    train(TOK_CFG, straight, data_root, options=opts)
    proc = subprocess.Popen(_cmd(TOK_CFG, broken, data_root, options=opts), cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        latest = broken / "latest.pth"
        if latest.is_file() and checkpoint_position(latest)[1] >= 12:  # mid-epoch 2
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (broken / "epoch_2.pth").exists()
    resumed = train(TOK_CFG, broken, data_root, "--resume", options=opts)
    assert "resumed from" in resumed.stderr
    a, b = load_checkpoint(straight / "epoch_2.pth"), load_checkpoint(broken / "epoch_2.pth")
    assert a["global_iter"] == b["global_iter"] == 20
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["exp_avg"], sb["exp_avg"])


def test_two_process_gloo_run(tmp_path: Path, data_root: Path) -> None:
    work = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "train.py",
           "--config", TOK_CFG, "--work-dir", str(work), "--cfg-options", f"data_root={data_root}", "max_epochs=1"]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(1), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "x 2 process(es)" in proc.stderr
    ckpt = load_checkpoint(work / "epoch_1.pth")
    assert ckpt["global_iter"] == 5 and len(ckpt["rng"]) == 2  # 20 frames / 2 ranks / batch 2
    assert not any(k.startswith("module.") for k in ckpt["state_dict"])
    assert not torch.equal(ckpt["rng"][0]["torch"], ckpt["rng"][1]["torch"])
    # dead-code restarts every 3 steps: the counts of steps 4-5 of both processes (2 x 2 steps x 2 frames x 16 x 16)
    assert ckpt["vq_code_counts"].sum() == 2 * 2 * 2 * 16 * 16
