"""VPQ on hand-built rollouts with known values (docs/metrics.md, "VPQ")."""

from __future__ import annotations

import numpy as np
import pytest

from occworld_tokyo.evaluation.vpq import VPQMetric, connected_components
from occworld_tokyo.grid import EgoFrame, GridSpec
from occworld_tokyo.labels import DRONE, PEDESTRIAN, VEHICLE

G = GridSpec(x_range=(-12.0, 12.0), y_range=(-12.0, 12.0), z_range=(-2.0, 5.5))  # 60 x 60 x 6
SHAPE = G.shape


def empty(T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.zeros((T,) + SHAPE, np.uint8), np.zeros((T,) + SHAPE, np.uint8), np.zeros((T,) + SHAPE, np.int32))


def put(labels, inst, t, x0, x1, y, z, cls, iid=0):
    labels[t, x0:x1, y, z] = cls
    if inst is not None:
        inst[t, x0:x1, y, z] = iid


def metric(**kw) -> VPQMetric:
    kw.setdefault("grid", G)
    return VPQMetric(**kw)


def test_one_tp_one_fp_one_fn_single_class():
    pred, gt, inst = empty(1)
    put(gt, inst, 0, 10, 13, 10, 2, VEHICLE, 7)    # gt: 3 voxels
    put(pred, None, 0, 10, 15, 10, 2, VEHICLE)     # pred: 5 voxels covering them -> IoU 3/5 = 0.6
    put(pred, None, 0, 40, 43, 40, 2, VEHICLE)     # a false positive
    put(gt, inst, 0, 40, 43, 10, 2, VEHICLE, 8)    # a missed vehicle
    m = metric(thing_classes=(VEHICLE,), n_steps=1)
    m.update(pred, gt, inst)
    r = m.compute()
    assert (r["tp"], r["fp"], r["fn"], r["id_switches"]) == (1, 1, 1, 0)
    assert r["vpq"] == pytest.approx(0.6 / (1 + 0.5 + 0.5))
    assert r["vpq_per_step"] == [pytest.approx(0.3)]


def test_two_frames_three_classes_known_value():
    pred, gt, inst = empty(2)
    put(gt, inst, 0, 10, 13, 10, 2, VEHICLE, 1)
    put(pred, None, 0, 10, 15, 10, 2, VEHICLE)            # TP, IoU 0.6
    put(gt, inst, 1, 13, 16, 10, 2, VEHICLE, 1)            # moved 1.2 m forward
    put(pred, None, 1, 13, 16, 10, 2, VEHICLE)            # TP, IoU 1, same track
    put(pred, None, 0, 40, 42, 40, 1, PEDESTRIAN)         # FP pedestrian at step 0
    put(gt, inst, 0, 30, 32, 50, 4, DRONE, 2)              # FN drone at step 0
    m = metric()
    m.update(pred, gt, inst)
    r = m.compute()
    assert (r["tp"], r["fp"], r["fn"], r["id_switches"]) == (2, 1, 1, 0)
    assert r["vpq_per_class"]["vehicle"] == pytest.approx(1.6 / 2)
    assert r["vpq_per_class"]["pedestrian"] == 0.0 and r["vpq_per_class"]["drone"] == 0.0
    assert r["vpq"] == pytest.approx(0.8 / 3)
    assert r["vpq_pooled"] == pytest.approx(1.6 / 3)
    assert r["vpq_per_step"] == [pytest.approx(0.2), pytest.approx(1.0)]  # step 1: only the vehicle has segments


def test_id_switch_counts_fp_and_fn():
    # two vehicles 5.2 m apart swap places between the frames; the forecast segments them perfectly but the
    # tracker (nearest centroid, no velocity yet) keeps each track at its place -> both gt ids switch
    pred, gt, inst = empty(2)
    put(gt, inst, 0, 10, 14, 20, 2, VEHICLE, 1)
    put(gt, inst, 0, 23, 27, 20, 2, VEHICLE, 2)
    put(gt, inst, 1, 23, 27, 20, 2, VEHICLE, 1)
    put(gt, inst, 1, 10, 14, 20, 2, VEHICLE, 2)
    pred[:] = gt
    m = metric(thing_classes=(VEHICLE,))
    m.update(pred, gt, inst)
    r = m.compute()
    assert (r["tp"], r["fp"], r["fn"], r["id_switches"]) == (2, 2, 2, 2)
    assert r["vpq"] == pytest.approx(2 / (2 + 1 + 1))


def test_given_pred_instances_id_switch():
    pred, gt, inst = empty(3)
    pinst = np.zeros_like(inst)
    for t in range(3):
        put(gt, inst, t, 10 + t, 14 + t, 20, 2, VEHICLE, 5)
        put(pred, pinst, t, 10 + t, 14 + t, 20, 2, VEHICLE, 1 if t < 2 else 9)  # id changes at step 2
    m = metric(thing_classes=(VEHICLE,))
    m.update(pred, gt, inst, pred_instances=pinst)
    r = m.compute()
    assert (r["tp"], r["fp"], r["fn"], r["id_switches"]) == (2, 1, 1, 1)
    assert r["vpq_per_step"] == [1.0, 1.0, 0.0]


def test_fast_object_tracked_by_centroid_not_by_overlap():
    pred, gt, inst = empty(4)
    for t in range(4):  # 12 voxels (4.8 m) per 0.5 s step: no overlap between frames
        put(gt, inst, t, 5 + 12 * t, 9 + 12 * t, 30, 2, VEHICLE, 3)
    pred[:] = gt
    m = metric(thing_classes=(VEHICLE,))
    m.update(pred, gt, inst)
    assert m.compute()["vpq"] == pytest.approx(1.0) and m.compute()["id_switches"] == 0
    o = metric(thing_classes=(VEHICLE,), tracking="overlap")
    o.update(pred, gt, inst)
    r = o.compute()
    assert r["id_switches"] == 3 and r["vpq"] == pytest.approx(1 / (1 + 3))


def test_ego_motion_compensation_with_frames():
    # a parked vehicle; the agent drives 12 m forward per step, so in the grid the vehicle jumps 12 m back,
    # beyond the 10 m gate: uncompensated it looks like a new object (an ID switch), compensated it stays put
    pred, gt, inst = empty(2)
    put(gt, inst, 0, 45, 49, 30, 2, VEHICLE, 4)
    put(gt, inst, 1, 15, 19, 30, 2, VEHICLE, 4)
    pred[:] = gt
    plain = metric(thing_classes=(VEHICLE,))
    plain.update(pred, gt, inst)
    assert plain.compute()["id_switches"] == 1
    frames = [EgoFrame(300.0, -20.0, 0.0, 4.0), EgoFrame(312.0, -20.0, 0.0, 4.0)]
    comp = metric(thing_classes=(VEHICLE,))
    comp.update(pred, gt, inst, frames=frames)
    r = comp.compute()
    assert r["id_switches"] == 0 and r["vpq"] == pytest.approx(1.0)


def test_no_instances_gives_none_and_note():
    pred, gt, inst = empty(2)
    put(pred, None, 1, 5, 8, 5, 2, DRONE)
    m = metric()
    m.update(pred, gt, inst)
    r = m.compute()
    assert r["vpq"] is None and "no thing instances" in r["note"] and r["fp"] == 1
    assert r["vpq_per_step"] == [None, None]


def test_threshold_parameter():
    pred, gt, inst = empty(1)
    put(gt, inst, 0, 10, 15, 10, 2, PEDESTRIAN, 1)   # 5 voxels
    put(pred, None, 0, 13, 17, 10, 2, PEDESTRIAN)    # 4 voxels, 2 shared -> IoU 2/7
    strict = metric(iou_threshold=0.5)
    strict.update(pred, gt, inst)
    assert strict.compute()["vpq"] == 0.0
    loose = metric(iou_threshold=0.2)
    loose.update(pred, gt, inst)
    assert loose.compute()["vpq"] == pytest.approx(2 / 7)


def test_min_voxels_and_connectivity():
    flat = np.ravel_multi_index((np.array([1, 2]), np.array([1, 2]), np.array([1, 2])), SHAPE)
    assert len(set(connected_components(flat, SHAPE, 26))) == 1
    assert len(set(connected_components(flat, SHAPE, 6))) == 2
    pred, gt, inst = empty(1)
    put(gt, inst, 0, 10, 13, 10, 2, VEHICLE, 1)
    pred[:] = gt
    pred[0, 40, 40, 1] = VEHICLE  # a single-voxel speck
    m = metric(min_voxels=2)
    m.update(pred, gt, inst)
    assert m.compute()["fp"] == 0
    m1 = metric(min_voxels=1)
    m1.update(pred, gt, inst)
    assert m1.compute()["fp"] == 1


def test_batch_equals_sequences():
    pred, gt, inst = empty(2)
    put(gt, inst, 0, 10, 13, 10, 2, VEHICLE, 1)
    put(pred, None, 0, 10, 15, 10, 2, VEHICLE)
    a, b = metric(), metric()
    a.update(np.stack([pred, pred]), np.stack([gt, gt]), np.stack([inst, inst]))
    b.update(pred, gt, inst)
    b.update(pred, gt, inst)
    assert a.compute() == b.compute()
