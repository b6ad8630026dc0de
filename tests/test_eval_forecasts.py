"""Forecast methods as one interface: the same windows for every method, nothing read from the future frames,
the field's two mIoU rules, hand-made methods scored by their own names, a split given by folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from occworld_tokyo.evaluation.occupancy_metrics import OccupancyMetrics, miou_from_confusion
from occworld_tokyo.evaluation.scores import MethodScores
from occworld_tokyo.evaluation.vpq import VPQMetric

from test_eval_world_model import F, H, _batch, _evaluate, _model

HAND_MADE = dict(voxel_copy=1000.0, fill_copy=2.0, unseen_class_logit=8.0)


def test_both_mIoU_rules_by_hand():
    # 4 classes, free = 0. gt: class 1 on 4 voxels, class 2 absent. pred: class 1 on 2 of them + 1 free voxel
    # as class 1 (FP), class 2 predicted on 1 voxel (absent from gt), class 3 in neither.
    gt = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    pred = np.array([1, 1, 0, 2, 1, 0, 0, 0])
    cm = np.zeros((4, 4), np.int64)
    np.add.at(cm, (gt, pred), 1)
    iou1 = 2 / (4 + 3 - 2)                                       # TP 2, gt 4, pred 3
    # Occ3D: mean over classes with a union (1: 0.4, 2: 0 since only predicted); 3 has none -> left out
    assert miou_from_confusion(cm, 0) == pytest.approx((iou1 + 0.0) / 2)
    # OccWorld's MeanIoU: every non-free class; absent from gt -> 1 (class 2 despite its false voxel, class 3)
    assert miou_from_confusion(cm, 0, "occworld") == pytest.approx((iou1 + 1.0 + 1.0) / 3)
    with pytest.raises(ValueError, match="rule"):
        miou_from_confusion(cm, 0, "nuscenes")
    m = OccupancyMetrics(4, 0, n_steps=2, rate_hz=1.0)
    m.update(pred.reshape(1, 1, 2, 2, 2).repeat(2, 1), gt.reshape(1, 1, 2, 2, 2).repeat(2, 1))
    out = m.compute()
    assert out["miou_occworld_1s"] == pytest.approx((iou1 + 2.0) / 3) and out["miou_1s"] == pytest.approx(iou1 / 2)
    assert out["miou_occworld_avg"] == pytest.approx((iou1 + 2.0) / 3)


def test_methods_scored_on_different_windows_are_refused():
    from occworld_tokyo.grid import GridSpec

    grid = GridSpec(x_range=(-1.0, 1.0), y_range=(-1.0, 1.0), z_range=(0.0, 1.0), voxel_size=(1.0, 1.0, 1.0))
    scores = MethodScores(lambda: OccupancyMetrics(3, 0, 1, 1.0), lambda: VPQMetric(n_steps=1, grid=grid), False)
    x = torch.zeros(2, 1, 2, 2, 1, dtype=torch.long)
    kw = dict(gt_np=x.numpy(), inst=x.numpy().astype(np.int32), frames=[[None], [None]], mask_np=None)
    scores.update("a", [("s", 0), ("s", 1)], ["drone", "rover"], x, x, None, **kw)
    scores.update("b", [("s", 0), ("s", 2)], ["drone", "rover"], x, x, None, **kw)
    with pytest.raises(ValueError, match="different windows"):
        scores.compute()
    scores.drop(["b"])
    assert scores.check_same_windows() == 2 and scores.groups() == ["all", "drone", "rover"]


def test_no_forecast_reads_the_future_frames(monkeypatch):
    """Randomising the future frames' occupancy, instances and masks changes no method's forecast (the metrics
    change, the forecasts must not)."""
    seen: list[dict[str, np.ndarray]] = []
    original = MethodScores.update

    def record(self, method, windows, agents, pred, *args, **kwargs):
        if not windows or windows[0] == (0, 0):
            seen[-1][method] = pred.cpu().numpy().copy()
        return original(self, method, windows, agents, pred, *args, **kwargs)

    monkeypatch.setattr(MethodScores, "update", record)
    model = _model(plan=True).eval()
    batch = _batch(0)
    other = {k: v.clone() for k, v in batch.items()}
    g = torch.Generator().manual_seed(9)
    other["occ"][:, H:] = torch.randint(0, 14, other["occ"][:, H:].shape, generator=g).to(torch.uint8)
    other["instances"][:, H:] = torch.randint(0, 50, other["instances"][:, H:].shape, generator=g).int()
    other["visible"][:, H:] = torch.rand(other["visible"][:, H:].shape, generator=g) > 0.5
    results = []
    for b in (batch, other):
        seen.append({})
        results.append(_evaluate(model, [b], **HAND_MADE)[0])
    assert set(seen[0]) == {"world_model", "world_model_plan", "copy_last", "ego_warp", "ego_warp_fill",
                            "world_model_plan+voxel_copy", "world_model+unseen_prior"}
    for method, pred in seen[0].items():
        assert np.array_equal(pred, seen[1][method]), method
    assert results[0]["forecast"]["copy_last"]["miou"] != results[1]["forecast"]["copy_last"]["miou"]


def test_hand_made_methods_are_scored_by_name_and_the_model_row_is_the_model():
    model = _model(plan=True).eval()
    batches = [_batch(0), _batch(1)]
    plain = _evaluate(model, batches)[0]
    with_hand_made = _evaluate(model, batches, **HAND_MADE)[0]
    assert "world_model_plan+voxel_copy" not in plain["forecast"]
    assert with_hand_made["forecast"]["world_model_plan"] == plain["forecast"]["world_model_plan"]
    assert with_hand_made["hand_made"]["world_model_plan+voxel_copy"] == HAND_MADE
    assert with_hand_made["windows_scored"] == 2 * 2
    # the voxel copy is the ego warp wherever the last frame reaches: here it scores as ego_warp_fill does on IoU
    assert with_hand_made["forecast"]["world_model_plan+voxel_copy"] != plain["forecast"]["world_model_plan"]
    for key in ("miou_occworld_1s", "miou_occworld_avg"):
        assert key in with_hand_made["forecast"]["world_model"]
    assert "world_model_plan+voxel_copy/miou_occworld_1s" in with_hand_made["summary"]
