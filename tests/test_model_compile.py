"""The optional torch.compile switch (config `compile = dict(enabled=True, backend=..., mode=...)`): a compiled
model computes what the eager one does, and the trainer's switch trains the same weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from occworld_tokyo.model import build_model, tiny_model_config
from occworld_tokyo.training.checkpoint import load_checkpoint
from test_train_run import TOK_CFG, data_root, train  # noqa: F401  (data_root is a fixture)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_compiled_world_model_matches_eager():
    """aot_eager: dynamo capture and AOT autograd of forward and backward (what inductor then compiles; inductor
    itself needs minutes of C++ compilation on a 2-core machine, so it is left to benchmarks/bench_release_speed.py
    --compile)."""
    torch.manual_seed(0)
    model = build_model(tiny_model_config(grid_size=(16, 16, 4), history_frames=2, future_frames=2,
                                          pose_mode="nuscenes"))
    model.train()
    occ = torch.randint(0, 14, (1, 4, 16, 16, 4))
    poses = torch.cat([torch.randn(1, 4, 2), torch.nn.functional.one_hot(torch.tensor([[0, 1, 2, 1]]), 3)], -1)
    torch.manual_seed(1)
    eager = model.forward_train(occ, poses)
    eager["loss"].backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    compiled = torch.compile(model.forward_train, backend="aot_eager")
    torch.manual_seed(1)
    out = compiled(occ, poses)
    out["loss"].backward()
    assert torch.allclose(out["loss"], eager["loss"], atol=1e-5)
    assert torch.allclose(out["ce_codes"], eager["ce_codes"], atol=1e-5)
    for name, g in grads.items():
        assert torch.allclose(dict(model.named_parameters())[name].grad, g, atol=1e-4), name


def test_trainer_compile_switch_trains_the_same_weights(tmp_path: Path, data_root: Path) -> None:  # noqa: F811
    opts = ("max_epochs=1", "evaluation.max_samples=2", "data.workers_per_gpu=0")
    train(TOK_CFG, tmp_path / "eager", data_root, options=opts)
    proc = train(TOK_CFG, tmp_path / "compiled", data_root,
                 options=opts + ("compile.enabled=True", "compile.backend=eager"))
    assert "torch.compile: backend eager" in proc.stderr
    a, b = load_checkpoint(tmp_path / "eager" / "epoch_1.pth"), load_checkpoint(tmp_path / "compiled" / "epoch_1.pth")
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
