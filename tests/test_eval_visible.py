"""Metrics over all voxels and over the camera-visible ones (evaluation/visible.py), against hand-computed values;
VPQ at several IoU thresholds in one pass; the settings that choose them (docs/metrics.md)."""

from __future__ import annotations

import numpy as np
import pytest

from occworld_tokyo.config import ConfigError, validate_config
from occworld_tokyo.evaluation import AllAndVisible, OccupancyMetrics, VPQMetric, split_results
from occworld_tokyo.grid import GridSpec
from occworld_tokyo.labels import PEDESTRIAN, VEHICLE

# ------------------------------------------------------------------ mIoU / IoU, 8 voxels, free=0, A=1, B=2
# rate 1 Hz: steps 0 / 1 / 2 are 1 s / 2 s / 3 s
GT = np.array([[1, 1, 1, 2, 2, 0, 0, 0],
               [2, 2, 0, 0, 0, 0, 0, 0],
               [1, 0, 0, 0, 0, 0, 0, 0]], np.uint8)
PRED = np.array([[1, 1, 2, 2, 0, 0, 1, 0],
                 [2, 0, 0, 0, 0, 0, 0, 2],
                 [1, 0, 0, 0, 0, 0, 0, 0]], np.uint8)
MASK = np.array([[1, 1, 1, 1, 0, 0, 0, 0],
                 [0, 1, 1, 1, 1, 1, 1, 0],
                 [0, 0, 0, 0, 0, 0, 0, 0]], bool)


def _grid(a: np.ndarray) -> np.ndarray:
    return a.reshape(1, 3, 2, 2, 2)  # one sample, 3 steps


def test_occupancy_metrics_all_and_visible_by_hand():
    pair = AllAndVisible(lambda: OccupancyMetrics(3, 0, 3, 1.0, class_names=("free", "A", "B")), True)
    pair.update(_grid(PRED), _grid(GT), mask=_grid(MASK))
    every, seen = pair.compute()
    # all voxels. 1 s: A TP 2 FP 1 FN 1 -> 2/4, B TP 1 FP 1 FN 1 -> 1/3; occupied TP 4 FP 1 FN 1 -> 4/6.
    # 2 s: A absent (None), B TP 1 FP 1 FN 1 -> 1/3; occupied 1/3.  3 s: A 1/1; occupied 1/1.
    assert every["miou"] == pytest.approx([5 / 12, 1 / 3, 1.0])
    assert every["iou"] == pytest.approx([4 / 6, 1 / 3, 1.0])
    assert every["per_class_iou"]["A"] == [pytest.approx(0.5), None, 1.0]
    assert every["miou_avg"] == pytest.approx((5 / 12 + 1 / 3 + 1) / 3) and every["iou_avg"] == pytest.approx(2 / 3)
    # visible. 1 s, voxels 0-3: gt 1 1 1 2, pred 1 1 2 2: A TP 2 FN 1 -> 2/3, B TP 1 FP 1 -> 1/2; occupied 4/4.
    # 2 s, voxels 1-6: gt 2 0 0 0 0 0, pred all free: B FN 1 -> 0; occupied 0/1.  3 s: nothing visible -> None.
    assert seen["miou"][:2] == pytest.approx([7 / 12, 0.0]) and seen["miou"][2] is None
    assert seen["iou"][:2] == pytest.approx([1.0, 0.0]) and seen["iou"][2] is None
    assert seen["per_class_iou"]["A"] == [pytest.approx(2 / 3), None, None]
    assert seen["per_class_iou"]["B"] == [pytest.approx(0.5), 0.0, None]
    assert seen["miou_1s"] == pytest.approx(7 / 12) and seen["miou_3s"] is None
    assert seen["miou_avg"] == pytest.approx(7 / 24) and seen["iou_avg"] == pytest.approx(0.5)  # of 1 s and 2 s


def test_no_mask_evaluated_and_sessions_without_masks():
    only_all = AllAndVisible(lambda: OccupancyMetrics(3, 0, 3, 1.0), False)
    only_all.update(_grid(PRED), _grid(GT), mask=_grid(MASK))
    assert only_all.visible is None and split_results({"m": only_all}) == ({"m": only_all.compute()[0]}, None)
    unmasked = AllAndVisible(lambda: OccupancyMetrics(3, 0, 3, 1.0), True)
    unmasked.update(_grid(PRED), _grid(GT), mask=None)  # a batch without a mask counts every voxel as visible
    every, seen = unmasked.compute()
    assert every == seen


# ------------------------------------------------------------------ VPQ, one frame of 60 x 60 x 6 voxels
G = GridSpec(x_range=(-12.0, 12.0), y_range=(-12.0, 12.0), z_range=(-2.0, 5.5))


def _vpq_frame() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vehicles at y = 10 and 30, a hidden vehicle at y = 10, x = 40, a pedestrian at y = 50, a false positive
    at x = 40, y = 40; the camera sees x < 14 (voxel rows 0..13)."""
    shape = (1,) + G.shape
    gt, pred, inst = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8), np.zeros(shape, np.int32)

    def put(a, x0, x1, y, label, ids=None, iid=0):
        a[0, x0:x1, y, 2] = label
        if ids is not None:
            ids[0, x0:x1, y, 2] = iid

    put(gt, 10, 14, 10, VEHICLE, inst, 1)
    put(pred, 10, 16, 10, VEHICLE)       # IoU 4/6; visible: 10..13 both -> 1
    put(gt, 12, 16, 30, VEHICLE, inst, 3)
    put(pred, 13, 17, 30, VEHICLE)       # IoU 3/5; visible: gt 12..13 kept, pred 13 alone (< min_voxels 2)
    put(gt, 40, 43, 10, VEHICLE, inst, 2)  # missed; hidden
    put(pred, 40, 43, 40, VEHICLE)       # false positive; hidden
    put(gt, 10, 15, 50, PEDESTRIAN, inst, 5)
    put(pred, 13, 17, 50, PEDESTRIAN)    # IoU 2/7: a match at 0.2, not at 0.5; visible: gt 10..13, pred 13 alone
    mask = np.zeros(shape, bool)
    mask[0, :14] = True
    return pred, gt, inst, mask


def test_vpq_all_and_visible_at_two_thresholds_by_hand():
    pred, gt, inst, mask = _vpq_frame()
    pair = AllAndVisible(lambda: VPQMetric(iou_threshold=(0.5, 0.2), n_steps=1, grid=G), True)
    pair.update(pred, gt, inst, mask=mask)
    every, seen = pair.compute()
    vehicle = (4 / 6 + 3 / 5) / (2 + 0.5 + 0.5)          # 2 TP, 1 FP, 1 FN
    strict, loose = every["by_threshold"]["0.5"], every["by_threshold"]["0.2"]
    assert strict["vpq_per_class"]["vehicle"] == pytest.approx(vehicle)
    assert strict["vpq_per_class"]["pedestrian"] == 0.0    # 1 FP + 1 FN
    assert loose["vpq_per_class"]["pedestrian"] == pytest.approx(2 / 7)
    assert strict["vpq_per_class"]["drone"] is None        # no drone anywhere: not in the class mean
    assert strict["vpq"] == pytest.approx(vehicle / 2) and loose["vpq"] == pytest.approx((vehicle + 2 / 7) / 2)
    assert every["vpq"] == strict["vpq"] and every["settings"]["iou_thresholds"] == [0.5, 0.2]
    # visible: vehicle 1 TP (IoU 1) + 1 FN (its prediction is a 1-voxel speck), the hidden pair dropped;
    # pedestrian 1 FN -> (1 + 0) / 2 at both thresholds
    for r in seen["by_threshold"].values():
        assert (r["tp"], r["fp"], r["fn"], r["gt_segments"]) == (1, 0, 2, 3)
        assert r["vpq_per_class"]["vehicle"] == pytest.approx(1 / 1.5) and r["vpq_per_class"]["pedestrian"] == 0.0
        assert r["vpq"] == pytest.approx(1 / 3)


def test_vpq_thresholds_in_one_pass_equal_separate_metrics():
    rng = np.random.default_rng(3)
    T = 4
    gt = np.zeros((T,) + G.shape, np.uint8)
    inst = np.zeros(gt.shape, np.int32)
    pred = np.zeros(gt.shape, np.uint8)
    for k in range(6):  # six vehicles drifting along x; the forecast is off by 0-3 voxels
        x, y = rng.integers(5, 45), 5 + 9 * k
        for t in range(T):
            gt[t, x + 2 * t:x + 2 * t + 5, y:y + 2, 2] = VEHICLE
            inst[t, x + 2 * t:x + 2 * t + 5, y:y + 2, 2] = k + 1
            d = rng.integers(0, 4)
            pred[t, x + 2 * t + d:x + 2 * t + d + 5, y:y + 2, 2] = VEHICLE
    both = VPQMetric(iou_threshold=[0.5, 0.2], n_steps=T, grid=G)
    both.update(pred, gt, inst)
    for thr in (0.5, 0.2):
        alone = VPQMetric(iou_threshold=thr, n_steps=T, grid=G)
        alone.update(pred, gt, inst)
        expected = {k: v for k, v in alone.compute().items() if k not in ("settings", "by_threshold")}
        assert both.compute()["by_threshold"][f"{thr:g}"] == expected
    assert both.compute()["by_threshold"]["0.5"]["vpq"] < both.compute()["by_threshold"]["0.2"]["vpq"]


@pytest.mark.parametrize("bad", [(), (0.5, 0.5), (1.0,), (-0.1, 0.2)])
def test_vpq_threshold_list_is_checked(bad):
    with pytest.raises(ValueError, match="iou_threshold"):
        VPQMetric(iou_threshold=bad)


@pytest.mark.parametrize("evaluation, message", [
    ({"vpq_iou_thresholds": [0.5, 1.5]}, "evaluation.vpq_iou_thresholds = [0.5, 1.5] must be a non-empty list"),
    ({"vpq_iou_thresholds": []}, "evaluation.vpq_iou_thresholds = []"),
    ({"vpq_iou_threshold": 0.5}, "did you mean 'vpq_iou_thresholds'"),
])
def test_settings_name_the_key(evaluation, message):
    with pytest.raises(ConfigError) as exc:
        validate_config({"evaluation": evaluation}, source="x.py")
    assert message in str(exc.value)
