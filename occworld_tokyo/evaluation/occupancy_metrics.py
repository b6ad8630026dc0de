"""Semantic occupancy forecast metrics in OccWorld's convention (see docs/metrics.md).

Per future step t a (num_classes x num_classes) confusion matrix (rows = ground truth, columns =
prediction) is accumulated over the whole dataset; the metrics come from the summed counts, not from
per-sample averages:

- per-class IoU_c = TP_c / (TP_c + FP_c + FN_c);
- mIoU (`miou`, Occ3D's rule) = mean of IoU_c over the non-free classes whose union is non-empty at that step (a
  class absent from both ground truth and prediction has no IoU and is left out of the mean, reported as None; a
  class only the prediction has scores 0);
- mIoU under the released OccWorld's rule (`miou_occworld`, its `MeanIoU` in utils/metric_util.py): mean over
  EVERY non-free class, a class absent from the ground truth counting IoU 1 whatever is predicted;
- IoU (binary) = IoU of "occupied" (any label != free) vs free.

Step indexing: 0-based step i is the frame (i + 1) / rate_hz seconds after the current frame. At 2 Hz
step 0 = 0.5 s, step 1 = 1 s, step 3 = 2 s, step 5 = 3 s. `miou_1s` etc. are reported only for steps that
received data; `*_avg` is the mean over the 1 s / 2 s / 3 s values that exist (`avg_of_s` lists them).

Counting is a single bincount over `gt * C + pred` per step, done with torch on the input's device when a
tensor is given, with numpy otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..labels import LABEL_NAMES, NUM_CLASSES
from .arrays import to_numpy

try:  # torch is optional for numpy-only use
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]

REPORT_SECONDS: tuple[float, ...] = (1.0, 2.0, 3.0)


def _is_torch(x: Any) -> bool:
    return torch is not None and isinstance(x, torch.Tensor)


def step_index_for_seconds(seconds: float, rate_hz: float) -> int:
    """0-based future step index of the frame `seconds` after the current one (1 s at 2 Hz -> 1)."""
    k = seconds * rate_hz
    if abs(k - round(k)) > 1e-6 or round(k) < 1:
        raise ValueError(f"{seconds} s is not a whole number of {rate_hz} Hz steps")
    return int(round(k)) - 1


def confusion_matrix(pred: Any, gt: Any, num_classes: int, mask: Any = None,
                     ignore_index: int | None = None, free_index: int = 0) -> np.ndarray:
    """(C, C) int64 confusion counts (rows gt, columns pred) of two same-shape label arrays.

    CUDA tensors are counted on their device; CPU tensors and numpy arrays with numpy.
    Voxels where `mask` is False or gt == `ignore_index` are not counted. Labels outside [0, C) (other
    than the ignored gt value) raise ValueError rather than being silently dropped.
    """
    if tuple(pred.shape) != tuple(gt.shape):
        raise ValueError(f"pred shape {tuple(pred.shape)} != gt shape {tuple(gt.shape)}")
    if mask is not None and tuple(mask.shape) != tuple(gt.shape):
        raise ValueError(f"mask shape {tuple(mask.shape)} != gt shape {tuple(gt.shape)}")
    on_gpu = any(_is_torch(a) and a.device.type != "cpu" for a in (pred, gt, mask))
    if on_gpu:
        return _confusion_torch(pred, gt, num_classes, mask, ignore_index)
    pred, gt, mask = (to_numpy(a) for a in (pred, gt, mask))
    common = free_index * (num_classes + 1) if 0 <= free_index < num_classes else 0
    return _confusion_numpy(pred, gt, num_classes, None if mask is None else mask.astype(bool, copy=False),
                            ignore_index, common)


def _select(pred, gt, mask, ignore_index):
    keep = None
    if mask is not None:
        keep = mask
    if ignore_index is not None:
        not_ignored = gt != ignore_index
        keep = not_ignored if keep is None else keep & not_ignored
    if keep is None:
        return pred.reshape(-1), gt.reshape(-1)
    return pred[keep], gt[keep]


def _check_range(p_min, p_max, g_min, g_max, num_classes: int) -> None:
    if p_min < 0 or p_max >= num_classes:
        raise ValueError(f"prediction labels must be in [0, {num_classes}), got [{p_min}, {p_max}]")
    if g_min < 0 or g_max >= num_classes:
        raise ValueError(f"ground-truth labels must be in [0, {num_classes}) (or ignore_index), "
                         f"got [{g_min}, {g_max}]")


def _confusion_numpy(pred: np.ndarray, gt: np.ndarray, num_classes: int, mask, ignore_index,
                     common: int = 0) -> np.ndarray:
    """Bincount of the joint code gt * C + pred.

    Excluded voxels (mask False, gt == ignore_index) get the code C * C, which is dropped: no boolean
    compaction of the whole grid. `common` is the code expected to dominate (free-free); it is counted by
    subtraction so that only the other voxels go through bincount (~3x faster on sparse grids).
    """
    n_codes = num_classes * num_classes
    keep = None if mask is None else mask.reshape(-1)
    g = gt.reshape(-1)
    p = pred.reshape(-1)
    if ignore_index is not None:
        not_ignored = g != ignore_index
        keep = not_ignored if keep is None else keep & not_ignored
    if keep is not None and not keep.any():
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    p_ext, g_ext = (p.min(), p.max()), (g.min(), g.max())
    if keep is not None and not (0 <= p_ext[0] and p_ext[1] < num_classes and 0 <= g_ext[0] and g_ext[1] < num_classes):
        # only the kept voxels must be valid labels (e.g. 255 "unknown" outside the mask is fine)
        p_ext, g_ext = (p[keep].min(), p[keep].max()), (g[keep].min(), g[keep].max())
    _check_range(int(p_ext[0]), int(p_ext[1]), int(g_ext[0]), int(g_ext[1]), num_classes)
    # the joint code (and the "excluded" code C * C) fits a small dtype: 196 < 256 for 14 classes
    code_dtype = np.min_scalar_type(n_codes)
    code = g.astype(code_dtype) * code_dtype.type(num_classes)
    code += p.astype(code_dtype, copy=False)
    if keep is not None:
        # branch-free select (np.where / putmask are ~10x slower on irregular masks):
        # code * keep + C*C * (1 - keep)
        k = keep.view(np.uint8).astype(code_dtype, copy=False)
        code *= k
        code += (code_dtype.type(1) - k) * code_dtype.type(n_codes)
    rare = code[code != common]
    counts = np.bincount(rare, minlength=n_codes + 1).astype(np.int64)
    counts[common] += code.size - rare.size
    return counts[:n_codes].reshape(num_classes, num_classes)


def _confusion_torch(pred, gt, num_classes: int, mask, ignore_index) -> np.ndarray:
    pred = torch.as_tensor(pred)
    gt = torch.as_tensor(gt, device=pred.device)
    if mask is not None:
        mask = torch.as_tensor(mask, device=pred.device).bool()
    p, g = _select(pred, gt, mask, ignore_index)
    if p.numel() == 0:
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    ext = torch.stack([p.min().long(), p.max().long(), g.min().long(), g.max().long()]).cpu().tolist()
    _check_range(*ext, num_classes)
    code = g.long() * num_classes + p.long()
    counts = torch.bincount(code, minlength=num_classes * num_classes)
    return counts.cpu().numpy().astype(np.int64).reshape(num_classes, num_classes)


def iou_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Per-class IoU (C,) float64; NaN where the class is in neither ground truth nor prediction."""
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - np.diag(cm)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, tp / np.maximum(union, 1), np.nan)


def binary_iou_from_confusion(cm: np.ndarray, free_index: int) -> float | None:
    """IoU of occupied (label != free) vs free; None when nothing is occupied in gt or prediction."""
    occ = np.ones(cm.shape[0], dtype=bool)
    occ[free_index] = False
    tp = cm[np.ix_(occ, occ)].sum()
    fp = cm[free_index, occ].sum()
    fn = cm[occ, free_index].sum()
    denom = tp + fp + fn
    return float(tp / denom) if denom > 0 else None


def miou_from_confusion(cm: np.ndarray, free_index: int, rule: str = "occ3d") -> float | None:
    """Mean IoU over the non-free classes. rule 'occ3d': over the classes that occur (union > 0), None when none
    occurs; rule 'occworld' (the released OccWorld's MeanIoU): over every non-free class, a class absent from the
    ground truth counting 1."""
    ious = np.delete(iou_from_confusion(cm), free_index)
    if rule == "occworld":
        in_gt = np.delete(cm.sum(1), free_index) > 0
        return float(np.where(in_gt, np.nan_to_num(ious), 1.0).mean()) if ious.size else None
    if rule != "occ3d":
        raise ValueError(f"mIoU rule must be 'occ3d' or 'occworld' (got {rule!r})")
    ious = ious[~np.isnan(ious)]
    return float(ious.mean()) if ious.size else None


MIOU_RULES: tuple[str, ...] = ("occ3d", "occworld")


class OccupancyMetrics:
    """Accumulates per-future-step confusion counts over a dataset and reports OccWorld's mIoU / IoU.

    update(pred, gt, mask=None): (B, T, X, Y, Z) or one sequence (T, X, Y, Z) of integer labels (numpy or
    torch), T <= n_steps; `mask` is a bool array of the same shape (e.g. Occ3D's mask_camera) or None.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, free_index: int = 0, n_steps: int = 6,
                 rate_hz: float = 2.0, ignore_index: int | None = None,
                 class_names: tuple[str, ...] | None = None) -> None:
        if not 0 <= free_index < num_classes:
            raise ValueError("free_index must be a class index")
        self.num_classes = num_classes
        self.free_index = free_index
        self.n_steps = n_steps
        self.rate_hz = rate_hz
        self.ignore_index = ignore_index
        if class_names is None:
            class_names = LABEL_NAMES if num_classes == NUM_CLASSES else tuple(f"class_{i}" for i in range(num_classes))
        if len(class_names) != num_classes:
            raise ValueError("class_names must have num_classes entries")
        self.class_names = tuple(class_names)
        self.reset()

    def reset(self) -> None:
        self.confusion = np.zeros((self.n_steps, self.num_classes, self.num_classes), dtype=np.int64)
        self.samples_per_step = np.zeros(self.n_steps, dtype=np.int64)

    def update(self, pred: Any, gt: Any, mask: Any = None) -> None:
        if tuple(pred.shape) != tuple(gt.shape):
            raise ValueError(f"pred shape {tuple(pred.shape)} != gt shape {tuple(gt.shape)}")
        if pred.ndim == 4:  # one sequence
            pred, gt = pred[None], gt[None]
            mask = None if mask is None else mask[None]
        if pred.ndim != 5:
            raise ValueError(f"expected (B, T, X, Y, Z) or (T, X, Y, Z), got shape {tuple(pred.shape)}")
        n_t = pred.shape[1]
        if n_t > self.n_steps:
            raise ValueError(f"{n_t} future steps given, metric was built for n_steps={self.n_steps}")
        for t in range(n_t):
            m = None if mask is None else mask[:, t]
            self.confusion[t] += confusion_matrix(pred[:, t], gt[:, t], self.num_classes, m, self.ignore_index,
                                                 self.free_index)
            self.samples_per_step[t] += pred.shape[0]

    def steps_present(self) -> list[int]:
        return [t for t in range(self.n_steps) if self.samples_per_step[t] > 0]

    def compute(self) -> dict:
        steps = self.steps_present()
        out: dict[str, Any] = {
            "steps": steps,
            "steps_s": [(t + 1) / self.rate_hz for t in steps],
            "samples_per_step": [int(self.samples_per_step[t]) for t in steps],
            "miou": [miou_from_confusion(self.confusion[t], self.free_index) for t in steps],
            "miou_occworld": [miou_from_confusion(self.confusion[t], self.free_index, "occworld") for t in steps],
            "iou": [binary_iou_from_confusion(self.confusion[t], self.free_index) for t in steps],
        }
        per_class = {name: [] for i, name in enumerate(self.class_names) if i != self.free_index}
        for t in steps:
            ious = iou_from_confusion(self.confusion[t])
            for i, name in enumerate(self.class_names):
                if i != self.free_index:
                    per_class[name].append(None if np.isnan(ious[i]) else float(ious[i]))
        out["per_class_iou"] = per_class
        # voxels of each class in the ground truth and in the prediction, per step: a class only the prediction
        # has (counted 0 in the mIoU) shows here with gt 0
        out["per_class_voxels"] = {name: {"gt": [int(self.confusion[t][i].sum()) for t in steps],
                                          "pred": [int(self.confusion[t][:, i].sum()) for t in steps]}
                                   for i, name in enumerate(self.class_names) if i != self.free_index}
        out.update(_seconds_summary(out, steps, self.rate_hz, self.n_steps))
        return out


def _seconds_summary(out: dict, steps: list[int], rate_hz: float, n_steps: int) -> dict:
    """`miou_1s`, `miou_occworld_1s`, `iou_1s`, ... for the 1/2/3 s steps that exist, and their means as `*_avg`."""
    summary: dict[str, Any] = {}
    used: list[float] = []
    for sec in REPORT_SECONDS:
        k = sec * rate_hz
        if abs(k - round(k)) > 1e-6:
            continue
        t = int(round(k)) - 1
        if t in steps:
            pos = steps.index(t)
            tag = f"{sec:g}s"
            for key in ("miou", "miou_occworld", "iou"):
                summary[f"{key}_{tag}"] = out[key][pos]
            used.append(sec)
    if used:
        for key in ("miou", "miou_occworld", "iou"):
            vals = [summary[f"{key}_{s:g}s"] for s in used]
            vals = [v for v in vals if v is not None]
            summary[f"{key}_avg"] = float(np.mean(vals)) if vals else None
        summary["avg_of_s"] = used
    return summary


class ReconstructionMetrics(OccupancyMetrics):
    """Tokenizer reconstruction mIoU / IoU: one "step", update with (N, X, Y, Z) grids."""

    def __init__(self, num_classes: int = NUM_CLASSES, free_index: int = 0, ignore_index: int | None = None,
                 class_names: tuple[str, ...] | None = None) -> None:
        super().__init__(num_classes, free_index, 1, 1.0, ignore_index, class_names)

    def update(self, pred: Any, gt: Any, mask: Any = None) -> None:
        if pred.ndim == 3:
            pred, gt = pred[None], gt[None]
            mask = None if mask is None else mask[None]
        if pred.ndim == 5:  # (B, F, X, Y, Z): every frame is a reconstruction sample
            shape = (-1,) + tuple(pred.shape[2:])
            pred, gt = pred.reshape(shape), gt.reshape(shape)
            mask = None if mask is None else mask.reshape(shape)
        super().update(pred[:, None], gt[:, None], None if mask is None else mask[:, None])

    def compute(self) -> dict:
        full = super().compute()
        if not full["steps"]:
            return {"miou": None, "iou": None, "per_class_iou": {}, "samples": 0}
        return {
            "miou": full["miou"][0],
            "miou_occworld": full["miou_occworld"][0],
            "iou": full["iou"][0],
            "per_class_iou": {k: v[0] for k, v in full["per_class_iou"].items()},
            # how many voxels of each class there were and were predicted: an IoU of 0 on 16 voxels means little
            "per_class_voxels": {k: {"gt": v["gt"][0], "pred": v["pred"][0]}
                                 for k, v in full["per_class_voxels"].items()},
            "samples": full["samples_per_step"][0],
        }


def reconstruction_metrics(pred: Any, gt: Any, mask: Any = None, num_classes: int = NUM_CLASSES,
                           free_index: int = 0) -> dict:
    """One-shot tokenizer reconstruction mIoU / IoU of (N, X, Y, Z) or (X, Y, Z) grids."""
    m = ReconstructionMetrics(num_classes, free_index)
    m.update(pred, gt, mask)
    return m.compute()
