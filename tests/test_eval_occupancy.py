"""OccupancyMetrics against hand-computed confusion counts (docs/metrics.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from occworld_tokyo.evaluation.occupancy_metrics import (
    OccupancyMetrics,
    ReconstructionMetrics,
    confusion_matrix,
    reconstruction_metrics,
    step_index_for_seconds,
)

# 8 voxels, classes free=0, A=1, B=2
GT = np.array([1, 1, 1, 2, 2, 0, 0, 0], dtype=np.uint8)
PRED = np.array([1, 1, 2, 2, 0, 0, 1, 0], dtype=np.uint8)
# A: TP 2, FP 1 (voxel 6), FN 1 (voxel 2) -> 2/4; B: TP 1, FP 1 (voxel 2), FN 1 (voxel 4) -> 1/3
# binary occupied: TP 4 (0-3), FP 1 (6), FN 1 (4) -> 4/6
EXPECTED_MIOU = (0.5 + 1 / 3) / 2
EXPECTED_IOU = 4 / 6


def _seq(a: np.ndarray) -> np.ndarray:
    """(8,) -> one sample, one step: (1, 1, 2, 2, 2)."""
    return a.reshape(1, 1, 2, 2, 2)


def test_confusion_counts():
    cm = confusion_matrix(GT, GT, 3)
    assert np.array_equal(cm, np.diag([3, 3, 2]))
    cm = confusion_matrix(PRED, GT, 3)
    assert cm[1, 1] == 2 and cm[1, 2] == 1 and cm[2, 0] == 1 and cm[0, 1] == 1 and cm.sum() == 8


def test_known_confusion_gives_exact_miou_and_iou():
    m = OccupancyMetrics(num_classes=3, n_steps=1, class_names=("free", "A", "B"))
    m.update(_seq(PRED), _seq(GT))
    r = m.compute()
    assert r["miou"] == [pytest.approx(EXPECTED_MIOU)]
    assert r["iou"] == [pytest.approx(EXPECTED_IOU)]
    assert r["per_class_iou"]["A"] == [pytest.approx(0.5)]
    assert r["per_class_iou"]["B"] == [pytest.approx(1 / 3)]
    assert "free" not in r["per_class_iou"]
    # free's own IoU would be 2/4: including it would give (0.5 + 0.5 + 1/3) / 3 = 4/9, not 5/12
    assert r["miou"][0] != pytest.approx(4 / 9)
    # one step at 2 Hz is 0.5 s: no 1 s value, no average, nothing zero-filled
    assert "miou_1s" not in r and "miou_avg" not in r and r["steps_s"] == [0.5]


def test_two_class_toy_grid():
    gt = np.zeros((1, 1, 4, 4, 2), dtype=np.int64)
    gt[0, 0, :2] = 1  # 16 occupied voxels
    pred = np.zeros_like(gt)
    pred[0, 0, 1:3] = 1  # 8 right, 8 false positives, 8 missed
    m = OccupancyMetrics(num_classes=2, n_steps=1)
    m.update(pred, gt)
    r = m.compute()
    assert r["miou"][0] == pytest.approx(8 / 24)
    assert r["iou"][0] == pytest.approx(8 / 24)


def test_mask_respected():
    mask = np.ones(8, dtype=bool)
    mask[[2, 4, 6]] = False  # exactly the disagreeing voxels
    m = OccupancyMetrics(num_classes=3, n_steps=1)
    m.update(_seq(PRED), _seq(GT), _seq(mask))
    r = m.compute()
    assert r["miou"][0] == pytest.approx(1.0) and r["iou"][0] == pytest.approx(1.0)
    assert m.confusion.sum() == 5


def test_ignore_index():
    gt = GT.copy()
    gt[[2, 4, 6]] = 255
    m = OccupancyMetrics(num_classes=3, n_steps=1, ignore_index=255)
    m.update(_seq(PRED), _seq(gt))
    assert m.compute()["miou"][0] == pytest.approx(1.0)


def test_out_of_range_labels_raise():
    m = OccupancyMetrics(num_classes=3, n_steps=1)
    with pytest.raises(ValueError):
        m.update(_seq(PRED + 2), _seq(GT))
    with pytest.raises(ValueError):
        m.update(np.zeros((1, 7, 2, 2, 2), np.uint8), np.zeros((1, 7, 2, 2, 2), np.uint8))


def test_step_index_for_seconds():
    assert step_index_for_seconds(0.5, 2.0) == 0
    assert step_index_for_seconds(1.0, 2.0) == 1
    assert step_index_for_seconds(2.0, 2.0) == 3
    assert step_index_for_seconds(3.0, 2.0) == 5
    with pytest.raises(ValueError):
        step_index_for_seconds(0.7, 2.0)


def _ramp(n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """12 voxels all class 1; at step t only t + 1 of them are predicted -> IoU (t + 1) / 12."""
    gt = np.ones((1, n_steps, 2, 2, 3), dtype=np.uint8)
    pred = np.zeros_like(gt)
    for t in range(n_steps):
        pred[0, t].reshape(-1)[: t + 1] = 1
    return pred, gt


def test_per_step_indexing_1s_2s_3s():
    pred, gt = _ramp(6)
    m = OccupancyMetrics(num_classes=2, n_steps=6, rate_hz=2.0)
    m.update(pred, gt)
    r = m.compute()
    assert r["steps_s"] == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert r["miou"] == pytest.approx([(t + 1) / 12 for t in range(6)])
    assert r["miou_1s"] == pytest.approx(2 / 12)  # step index 1
    assert r["miou_2s"] == pytest.approx(4 / 12)  # step index 3
    assert r["miou_3s"] == pytest.approx(6 / 12)  # step index 5
    assert r["miou_avg"] == pytest.approx(4 / 12)
    assert r["iou_3s"] == pytest.approx(6 / 12)
    assert r["avg_of_s"] == [1.0, 2.0, 3.0]


def test_missing_steps_are_omitted():
    pred, gt = _ramp(3)
    m = OccupancyMetrics(num_classes=2, n_steps=6)
    m.update(pred[0], gt[0])  # one (T, X, Y, Z) sequence
    r = m.compute()
    assert len(r["miou"]) == 3 and r["steps"] == [0, 1, 2]
    assert r["miou_1s"] == pytest.approx(2 / 12)
    assert "miou_2s" not in r and "miou_3s" not in r
    assert r["miou_avg"] == pytest.approx(2 / 12) and r["avg_of_s"] == [1.0]


def test_counts_pooled_over_dataset_not_averaged_per_batch():
    m = OccupancyMetrics(num_classes=2, n_steps=1)
    gt1 = np.array([1, 0, 0, 0]).reshape(1, 1, 1, 1, 4)
    m.update(gt1.copy(), gt1)  # IoU 1 on its own
    gt2 = np.zeros((1, 1, 1, 1, 4), dtype=np.int64)
    pred2 = np.array([1, 1, 1, 0]).reshape(1, 1, 1, 1, 4)
    m.update(pred2, gt2)  # 3 false positives
    assert m.compute()["miou"][0] == pytest.approx(1 / 4)  # not (1 + 0) / 2


def test_torch_matches_numpy():
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 14, (2, 3, 10, 10, 6)).astype(np.uint8)
    pred = np.where(rng.random(gt.shape) < 0.7, gt, rng.integers(0, 14, gt.shape)).astype(np.uint8)
    mask = rng.random(gt.shape) < 0.8
    a, b = OccupancyMetrics(n_steps=3), OccupancyMetrics(n_steps=3)
    a.update(pred, gt, mask)
    b.update(torch.from_numpy(pred).long(), torch.from_numpy(gt).long(), torch.from_numpy(mask))
    assert np.array_equal(a.confusion, b.confusion)
    # brute-force count
    t = 1
    brute = np.zeros((14, 14), dtype=np.int64)
    np.add.at(brute, (gt[:, t][mask[:, t]], pred[:, t][mask[:, t]]), 1)
    assert np.array_equal(a.confusion[t], brute)


def test_reconstruction_metrics():
    r = reconstruction_metrics(PRED.reshape(2, 2, 2), GT.reshape(2, 2, 2), num_classes=3)
    assert r["miou"] == pytest.approx(EXPECTED_MIOU) and r["iou"] == pytest.approx(EXPECTED_IOU)
    rm = ReconstructionMetrics(num_classes=3)
    rm.update(np.stack([PRED, GT]).reshape(1, 2, 2, 2, 2), np.stack([GT, GT]).reshape(1, 2, 2, 2, 2))
    assert rm.compute()["samples"] == 2


def test_device_path_matches_numpy_path():
    """The torch bincount path (used for CUDA tensors) gives the same counts; run here on CPU tensors."""
    from occworld_tokyo.evaluation.occupancy_metrics import _confusion_numpy, _confusion_torch

    rng = np.random.default_rng(2)
    gt = rng.integers(0, 14, (4, 9, 7)).astype(np.int64)
    gt[0, 0, :3] = 255
    pred = rng.integers(0, 14, gt.shape).astype(np.int64)
    mask = rng.random(gt.shape) < 0.7
    a = _confusion_numpy(pred, gt, 14, mask, 255)
    b = _confusion_torch(torch.from_numpy(pred), torch.from_numpy(gt), 14, torch.from_numpy(mask), 255)
    assert np.array_equal(a, b) and a.sum() == (mask & (gt != 255)).sum()


def test_reconstruction_counts_the_voxels_behind_each_class_iou():
    """A class IoU of 0 on a handful of voxels reads differently from one on thousands: the counts come along."""
    from occworld_tokyo.evaluation import ReconstructionMetrics

    gt = np.zeros((1, 4, 4, 4), np.uint8)
    gt[0, 0, 0, 0], gt[0, 1, 1, 1] = 11, 1        # one vehicle voxel, one building voxel
    pred = np.zeros_like(gt)
    pred[0, 0, 0, 0], pred[0, 2, 2, 2] = 11, 11   # the vehicle found, the building missed, one vehicle invented
    r = ReconstructionMetrics(14, 0)
    r.update(pred, gt)
    out = r.compute()
    assert out["per_class_voxels"]["vehicle"] == {"gt": 1, "pred": 2}
    assert out["per_class_voxels"]["building"] == {"gt": 1, "pred": 0}
    assert out["per_class_iou"]["vehicle"] == 0.5 and out["per_class_iou"]["building"] == 0.0
