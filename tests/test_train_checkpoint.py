"""Checkpoint contents, atomic writes, weights-only reading, newest by content (not by name), RNG states."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from occworld_tokyo.training.checkpoint import (CheckpointError, capture_rng, find_best, find_latest,
                                                load_checkpoint, restore_rng, save_checkpoint)


def _payload(epoch: int, it: int) -> dict:
    return {"state_dict": {"w": torch.full((2,), float(epoch))}, "optimizer": {}, "scheduler": {"step_count": it},
            "epoch": epoch, "global_iter": it, "iter_in_epoch": 0, "rng": [capture_rng()]}


def test_newest_by_epoch_and_step_not_text(tmp_path: Path) -> None:
    for e in (5, 9, 10):
        save_checkpoint(tmp_path / f"epoch_{e}.pth", _payload(e, e * 10))
    assert sorted(p.name for p in tmp_path.glob("*.pth"))[-1] == "epoch_9.pth"  # what text sort would pick
    assert find_latest(tmp_path).name == "epoch_10.pth"
    save_checkpoint(tmp_path / "latest.pth", _payload(10, 107))  # mid-epoch 11: newer by step
    assert find_latest(tmp_path).name == "latest.pth"
    save_checkpoint(tmp_path / "best.pth", _payload(99, 999))  # best.pth is never a resume point
    assert find_latest(tmp_path).name == "latest.pth" and find_best(tmp_path).name == "best.pth"


def test_guide_layout_checkpoints_subfolder(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "checkpoints" / "epoch_10.pth", _payload(10, 100))
    save_checkpoint(tmp_path / "epoch_2.pth", _payload(2, 20))
    assert find_latest(tmp_path) == tmp_path / "checkpoints" / "epoch_10.pth"
    assert load_checkpoint(tmp_path / "checkpoints" / "epoch_10.pth")["epoch"] == 10


def test_atomic_write_leaves_no_partial_file(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "epoch_1.pth", _payload(1, 10))

    class Boom:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_checkpoint(tmp_path / "epoch_1.pth", {"state_dict": {}, "x": Boom()})
    assert load_checkpoint(tmp_path / "epoch_1.pth")["epoch"] == 1  # old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["epoch_1.pth"]  # no temporary left


def test_pickled_objects_refused(tmp_path: Path) -> None:
    torch.save({"state_dict": {}, "obj": Path("x")}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")


def test_rng_roundtrip_through_file(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "c.pth", {"state_dict": {}, "rng": [capture_rng()]})
    a = (torch.rand(3), np.random.rand(2), random.random())
    restore_rng(load_checkpoint(tmp_path / "c.pth")["rng"][0])
    b = (torch.rand(3), np.random.rand(2), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
