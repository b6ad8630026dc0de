"""train.py flags, config validation (unknown keys named), the guide's config file, the lr schedule."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from occworld_tokyo.config import ConfigError, load_config, validate_config
from occworld_tokyo.training.cli import build_parser, main, resolve_config
from occworld_tokyo.training.schedule import WarmupCosine, lr_at

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT.parent / "shared" / "seed" / "000_fb4ec1d01ab21971.txt"


def test_flags_defaults_and_aliases() -> None:
    p = build_parser()
    a = p.parse_args([])
    assert a.config == "config/finetune_tokyo.py" and a.seed is None and not a.resume and not a.eval_only
    b = p.parse_args(["--py-config", "x.py", "--work-dir", "w", "--resume", "--resume-from", "f.pth", "--from-scratch",
                      "--gpu-ids", "0,1", "--seed", "7", "--batch-size", "3", "--lr", "5e-5", "--epochs", "9",
                      "--eval-only", "--cfg-options", "a=1", "b.c=2"])
    assert (b.config, b.work_dir, b.resume_from, b.gpu_ids, b.seed, b.batch_size, b.lr, b.epochs) == \
           ("x.py", "w", "f.pth", "0,1", 7, 3, 5e-5, 9)
    assert b.resume and b.from_scratch and b.eval_only and b.cfg_options == ["a=1", "b.c=2"]


def test_flags_override_config() -> None:
    args = build_parser().parse_args(["--config", str(ROOT / "config/finetune_tokyo.py"), "--batch-size", "3",
                                      "--lr", "5e-5", "--epochs", "9", "--seed", "1",
                                      "--cfg-options", "optimizer.weight_decay=0.05", "evaluation.max_samples=4"])
    cfg = resolve_config(args)
    assert cfg["data"]["samples_per_gpu"] == 3 and cfg["optimizer"]["lr"] == 5e-5 and cfg["max_epochs"] == 9
    assert cfg["seed"] == 1 and cfg["optimizer"]["weight_decay"] == 0.05 and cfg["evaluation"]["max_samples"] == 4
    assert cfg["model"]["freeze_vae"] is True and cfg["model"]["transformer"]["num_heads"] == 8  # base merged


def test_unknown_keys_are_named(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(f"_base_ = ['{ROOT / 'config/finetune_tokyo.py'}']\noptimzer = dict(lr=1e-3)\n")
    with pytest.raises(ConfigError, match=r"unknown key 'optimzer'.*did you mean 'optimizer'"):
        validate_config(load_config(bad))
    bad.write_text(f"_base_ = ['{ROOT / 'config/finetune_tokyo.py'}']\nmodel = dict(freez_vae=False)\n")
    with pytest.raises(ConfigError, match=r"'model.freez_vae'"):
        validate_config(load_config(bad))
    bad.write_text(f"_base_ = ['{ROOT / 'config/finetune_tokyo.py'}']\nlr_config = dict(policy='Step')\n")
    with pytest.raises(ConfigError, match=r"lr_config.policy"):
        validate_config(load_config(bad))
    assert main(["--config", str(ROOT / "config/finetune_tokyo.py"), "--cfg-options", "optimizer.lrr=1"]) == 2
    assert "optimizer.lrr" in capsys.readouterr().err
    assert main(["--config", str(ROOT / "config/finetune_tokyo.py"), "--lr", "-1"]) == 2
    assert main(["--config", str(tmp_path / "missing.py")]) == 2


def test_finetune_config_is_the_guide_verbatim() -> None:
    guide = GUIDE.read_text() if GUIDE.is_file() else None
    if guide is None:
        pytest.skip("user guide not available on this machine")
    block = re.search(r"### config/finetune_tokyo.py\s+```python\n(.*?)```", guide, re.S).group(1)
    assert block.strip() in (ROOT / "config/finetune_tokyo.py").read_text()
    cfg = load_config(ROOT / "config/finetune_tokyo.py")
    validate_config(cfg)
    assert cfg["evaluation"]["interval"] == 5 and cfg["fp16"]["enabled"] and cfg["lr_config"]["warmup_iters"] == 100
    for name in ("vqvae_tokyo", "tiny_vqvae", "tiny_finetune", "tiny_test_vqvae", "tiny_test_finetune"):
        validate_config(load_config(ROOT / f"config/{name}.py"))


@pytest.mark.parametrize("step,expected", [
    (0, 1e-4 / 100), (49, 0.5e-4), (99, 1e-4), (100, 1e-4),
    (550, 1e-6 + (1e-4 - 1e-6) * 0.5), (1000, 1e-6), (5000, 1e-6),
])
def test_schedule_lr_at_chosen_steps(step: int, expected: float) -> None:
    assert math.isclose(lr_at(step, 1e-4, 1e-6, 100, 1000), expected, rel_tol=1e-9)


def test_scheduler_sets_optimizer_lr_and_restores() -> None:
    import torch

    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    s = WarmupCosine(opt, 1e-3, 1e-5, 10, 110)
    assert math.isclose(opt.param_groups[0]["lr"], 1e-4)
    for _ in range(60):
        s.step()
    lr60 = opt.param_groups[0]["lr"]
    assert math.isclose(lr60, 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi * 0.5)))
    s2 = WarmupCosine(opt, 1e-3, 1e-5, 10, 110)
    s2.load_state_dict(s.state_dict())
    assert s2.step_count == 60 and opt.param_groups[0]["lr"] == lr60
