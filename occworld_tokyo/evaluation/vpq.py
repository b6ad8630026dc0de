"""Video panoptic quality (FIERY's VPQ) for the moving ("thing") classes of a forecast rollout.

VPQ = sum_t sum_{(p, g) in TP_t} IoU(p, g) / sum_t (|TP_t| + 0.5 |FP_t| + 0.5 |FN_t|), per thing class; the
reported `vpq` is the mean over classes that have a non-empty denominator (the panoptic-quality convention:
a class with only false positives counts as 0), `vpq_pooled` sums all classes into one ratio.

Instances (docs/metrics.md has the full story):
- ground truth: per frame and thing class, the voxels with that label and a non-zero instance id, grouped
  by id (ids come from the data and persist over time);
- prediction: per frame and thing class, the 3D connected components of the predicted label (26-connectivity
  by default, `connectivity=6` for face neighbours only) with at least `min_voxels` voxels (the same size
  filter is applied to ground-truth segments), then given persistent ids by a tracker:
  * `tracking="centroid"` (default): Hungarian assignment of components to the previous frame's tracks on
    the distance between the component centroid and the track's constant-velocity prediction, gated by
    `max_track_distance` metres; a track unmatched for more than `max_age` frames ends. Overlap tracking
    fails at 2 Hz for anything faster than ~1 m/s (a 4.5 m car at 10 m/s moves 5 m between frames), hence
    the default. When `frames` (EgoFrames of the future steps in one common frame) are given, centroids are
    compared in that common frame, so ego motion does not look like object motion;
  * `tracking="overlap"`: Hungarian assignment maximising voxel IoU with the previous frame's components
    (IoU > 0 required), in grid coordinates.
  Callers with their own instance ids can pass `pred_instances` and skip both steps.
- matching at each frame: same class, IoU > `iou_threshold` (default 0.5, FIERY; Cam4DOcc uses 0.2 in 3D),
  one-to-one by Hungarian assignment maximising IoU (unique anyway when the threshold is >= 0.5). Several
  thresholds (`iou_threshold=(0.5, 0.2)`) are scored in one pass: instances and tracks do not depend on the
  threshold, only the matching (and so the ID-switch references) does; the first one is the headline;
- temporal consistency: if a ground-truth instance is matched to a different predicted id than at its
  previous match within the same rollout, that pair is an ID switch and counts as one FP and one FN (no TP,
  no IoU); the new id becomes the reference for the next frames.
- visibility `mask` (e.g. Occ3D's mask_camera): voxels outside it count as free in BOTH prediction and ground
  truth before any instance is formed, so an instance wholly outside is dropped, a partly visible one keeps
  only its visible voxels (and is dropped when they are fewer than `min_voxels`), and a predicted component
  cut by the mask border may split in two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from ..grid import DEFAULT_GRID, EgoFrame, GridSpec
from ..labels import DYNAMIC_IDS, LABEL_NAMES
from .arrays import to_numpy



@dataclass
class Segments:
    """Instances of one class in one frame, sparse: sorted flat voxel indices and the segment each is in."""

    flat: np.ndarray      # (N,) int64, sorted
    seg: np.ndarray       # (N,) int64 in [0, n)
    ids: np.ndarray       # (n,) int64 instance / track id of each segment
    sizes: np.ndarray     # (n,) int64 voxel counts

    @property
    def n(self) -> int:
        return int(self.ids.size)

    @staticmethod
    def empty() -> "Segments":
        z = np.zeros(0, dtype=np.int64)
        return Segments(z, z, z, z)


def segments_from_ids(flat: np.ndarray, ids: np.ndarray, min_voxels: int = 1) -> Segments:
    """Group voxels (flat indices) by a non-zero id; drop groups smaller than `min_voxels`."""
    keep = ids != 0
    flat, ids = flat[keep], ids[keep]
    uniq, seg, sizes = np.unique(ids, return_inverse=True, return_counts=True)
    big = sizes >= min_voxels
    if not big.all():
        remap = np.cumsum(big) - 1
        keep = big[seg]
        flat, seg = flat[keep], remap[seg[keep]]
        uniq, sizes = uniq[big], sizes[big]
    order = np.argsort(flat, kind="stable")
    return Segments(flat[order].astype(np.int64), seg[order].astype(np.int64), uniq.astype(np.int64),
                    sizes.astype(np.int64))


def connected_components(flat: np.ndarray, shape: tuple[int, int, int], connectivity: int = 26) -> np.ndarray:
    """Component label (1..n) of each voxel in `flat` (voxels of one class), labelling only their bounding box."""
    if flat.size == 0:
        return np.zeros(0, dtype=np.int64)
    if connectivity not in (6, 18, 26):
        raise ValueError("connectivity must be 6, 18 or 26")
    structure = ndimage.generate_binary_structure(3, {6: 1, 18: 2, 26: 3}[connectivity])
    idx = np.stack(np.unravel_index(flat, shape), axis=1)
    lo = idx.min(0)
    local = idx - lo
    box = np.zeros(tuple(local.max(0) + 1), dtype=bool)
    box[local[:, 0], local[:, 1], local[:, 2]] = True
    labels, _ = ndimage.label(box, structure=structure)
    return labels[local[:, 0], local[:, 1], local[:, 2]].astype(np.int64)


def segment_centroids(segs: Segments, shape: tuple[int, int, int], grid: GridSpec,
                      frame: EgoFrame | None = None) -> np.ndarray:
    """(n, 3) centroids in metres: ego frame of the grid, or world (common) frame when `frame` is given."""
    if segs.n == 0:
        return np.zeros((0, 3))
    idx = np.stack(np.unravel_index(segs.flat, shape), axis=1).astype(np.float64)
    pts = grid.lower + (idx + 0.5) * np.asarray(grid.voxel_size)
    cen = np.stack([np.bincount(segs.seg, weights=pts[:, a], minlength=segs.n) for a in range(3)], axis=1)
    cen /= segs.sizes[:, None]
    return frame.ego_to_world(cen) if frame is not None else cen


def intersections(a: Segments, b: Segments) -> np.ndarray:
    """(a.n, b.n) voxel counts shared by each pair of segments."""
    out = np.zeros((a.n, b.n), dtype=np.int64)
    if a.n == 0 or b.n == 0:
        return out
    _, ia, ib = np.intersect1d(a.flat, b.flat, assume_unique=True, return_indices=True)
    np.add.at(out, (a.seg[ia], b.seg[ib]), 1)
    return out


def iou_matrix(a: Segments, b: Segments) -> np.ndarray:
    inter = intersections(a, b).astype(np.float64)
    union = a.sizes[:, None] + b.sizes[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_by_iou(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """One-to-one pairs (row, col) with IoU > threshold, maximising total IoU."""
    if iou.size == 0:
        return []
    cand = iou > threshold
    if not cand.any():
        return []
    rows, cols = linear_sum_assignment(np.where(cand, iou, 0.0), maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if cand[r, c]]


@dataclass
class _Track:
    id: int
    centroid: np.ndarray
    velocity: np.ndarray | None
    age: int = 0  # frames since last seen


@dataclass
class InstanceTracker:
    """Gives the connected components of one class persistent ids over the frames of one rollout."""

    method: str = "centroid"
    max_distance: float = 10.0
    max_age: int = 1
    tracks: list[_Track] = field(default_factory=list)
    prev: Segments | None = None

    def assign(self, comps: Segments, centroids: np.ndarray, next_id: int) -> tuple[np.ndarray, int]:
        """Ids for this frame's components (in order); returns (ids, next free id)."""
        ids = np.zeros(comps.n, dtype=np.int64)
        matched_tracks: dict[int, int] = {}
        if self.method == "overlap":
            if self.prev is not None and self.prev.n and comps.n:
                for r, c in match_by_iou(iou_matrix(self.prev, comps), 0.0):
                    ids[c] = self.prev.ids[r]
        elif self.method == "centroid":
            if self.tracks and comps.n:
                pred_pos = np.stack([t.centroid + (t.velocity * (t.age + 1) if t.velocity is not None else 0.0)
                                     for t in self.tracks])
                dist = np.linalg.norm(pred_pos[:, None, :] - centroids[None, :, :], axis=-1)
                big = 1e6
                rows, cols = linear_sum_assignment(np.where(dist <= self.max_distance, dist, big))
                for r, c in zip(rows, cols):
                    if dist[r, c] <= self.max_distance:
                        ids[c] = self.tracks[r].id
                        matched_tracks[r] = c
        else:
            raise ValueError(f"unknown tracking method {self.method!r}")
        for c in range(comps.n):
            if ids[c] == 0:
                ids[c] = next_id
                next_id += 1
        comps.ids = ids
        self.prev = comps
        if self.method == "centroid":
            self._update_tracks(matched_tracks, ids, centroids)
        return ids, next_id

    def _update_tracks(self, matched: dict[int, int], ids: np.ndarray, centroids: np.ndarray) -> None:
        new_tracks = []
        for r, t in enumerate(self.tracks):
            if r in matched:
                c = matched[r]
                vel = (centroids[c] - t.centroid) / (t.age + 1)
                new_tracks.append(_Track(t.id, centroids[c], vel, 0))
            elif t.age + 1 <= self.max_age:
                new_tracks.append(_Track(t.id, t.centroid, t.velocity, t.age + 1))
        known = {t.id for t in new_tracks}
        for c, i in enumerate(ids):
            if int(i) not in known:
                new_tracks.append(_Track(int(i), centroids[c], None, 0))
        self.tracks = new_tracks


@dataclass
class _Scores:
    """VPQ counts at one IoU threshold, each (n_steps, n_classes), and the ID-switch references
    ((class, gt id) -> predicted id at its latest match) of the rollout being scored."""

    threshold: float
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    id_switches: np.ndarray
    iou_sum: np.ndarray
    gt_segments: np.ndarray
    last_match: dict = field(default_factory=dict)

    @staticmethod
    def zeros(threshold: float, shape: tuple[int, int]) -> "_Scores":
        counts = [np.zeros(shape, dtype=np.int64) for _ in range(4)]  # tp, fp, fn, id_switches
        return _Scores(threshold, *counts, np.zeros(shape, dtype=np.float64), np.zeros(shape, dtype=np.int64))

    def score_frame(self, t: int, ci: int, c: int, iou: np.ndarray, gsegs: Segments, psegs: Segments) -> None:
        pairs = match_by_iou(iou, self.threshold)
        tp = fp = fn = sw = 0
        iou_sum = 0.0
        for g, p in pairs:
            key, pid = (c, int(gsegs.ids[g])), int(psegs.ids[p])
            if key in self.last_match and self.last_match[key] != pid:
                sw += 1
                fp += 1
                fn += 1
            else:
                tp += 1
                iou_sum += float(iou[g, p])
            self.last_match[key] = pid
        fp += psegs.n - len(pairs)
        fn += gsegs.n - len(pairs)
        self.tp[t, ci] += tp
        self.fp[t, ci] += fp
        self.fn[t, ci] += fn
        self.id_switches[t, ci] += sw
        self.iou_sum[t, ci] += iou_sum
        self.gt_segments[t, ci] += gsegs.n


def threshold_key(threshold: float) -> str:
    """The key of one IoU threshold in `by_threshold` (and in the metrics JSON): 0.5 -> '0.5'."""
    return f"{float(threshold):g}"


class VPQMetric:
    """FIERY VPQ over the thing classes, accumulated over rollouts (see the module docstring).

    `iou_threshold`: one threshold or several (the first is the headline; `compute()` reports it at the top
    level and every threshold under `by_threshold`)."""

    def __init__(self, thing_classes: Sequence[int] = DYNAMIC_IDS, iou_threshold: float | Sequence[float] = 0.5,
                 n_steps: int = 6,
                 min_voxels: int = 2, connectivity: int = 26, tracking: str = "centroid",
                 max_track_distance: float = 10.0, max_age: int = 1, grid: GridSpec = DEFAULT_GRID,
                 class_names: dict[int, str] | None = None) -> None:
        if tracking not in ("centroid", "overlap"):
            raise ValueError("tracking must be 'centroid' or 'overlap'")
        thresholds = (iou_threshold,) if isinstance(iou_threshold, (int, float)) else tuple(iou_threshold)
        if not thresholds or not all(0.0 <= float(t) < 1.0 for t in thresholds):
            raise ValueError(f"iou_threshold must be a number in [0, 1) or a non-empty list of them, "
                             f"got {iou_threshold!r}")
        if len({threshold_key(t) for t in thresholds}) != len(thresholds):
            raise ValueError(f"iou_threshold lists a threshold twice: {iou_threshold!r}")
        self.thing_classes = tuple(int(c) for c in thing_classes)
        self.iou_thresholds = tuple(float(t) for t in thresholds)
        self.iou_threshold = self.iou_thresholds[0]  # the headline
        self.n_steps = n_steps
        self.min_voxels = max(1, int(min_voxels))
        self.connectivity = connectivity
        self.tracking = tracking
        self.max_track_distance = max_track_distance
        self.max_age = max_age
        self.grid = grid
        self.class_names = class_names or {c: (LABEL_NAMES[c] if c < len(LABEL_NAMES) else f"class_{c}")
                                           for c in self.thing_classes}
        self.reset()

    def reset(self) -> None:
        shape = (self.n_steps, len(self.thing_classes))
        self.scores = [_Scores.zeros(t, shape) for t in self.iou_thresholds]
        self.sequences_per_step = np.zeros(self.n_steps, dtype=np.int64)

    # ----------------------------------------------------------------- update
    def update(self, pred_labels: Any, gt_labels: Any, gt_instances: Any, pred_instances: Any = None,
               frames: Sequence[EgoFrame] | Sequence[Sequence[EgoFrame]] | None = None, mask: Any = None) -> None:
        """One rollout (T, X, Y, Z) or a batch (B, T, X, Y, Z); `frames` per step (or per sample and step);
        `mask` bool of the same shape (True = visible; None = all voxels; module docstring)."""
        pred, gt, inst, pinst, mask = (to_numpy(a) for a in (pred_labels, gt_labels, gt_instances, pred_instances,
                                                               mask))
        if pred.shape != gt.shape or inst.shape != gt.shape or (pinst is not None and pinst.shape != gt.shape):
            raise ValueError("pred_labels, gt_labels, gt_instances (and pred_instances) must have one shape")
        if mask is not None and mask.shape != gt.shape:
            raise ValueError(f"mask shape {mask.shape} != gt_labels shape {gt.shape}")
        if pred.ndim == 4:
            pred, gt, inst = pred[None], gt[None], inst[None]
            pinst = None if pinst is None else pinst[None]
            mask = None if mask is None else mask[None]
            frames = None if frames is None else [frames]
        if pred.ndim != 5:
            raise ValueError(f"expected (T, X, Y, Z) or (B, T, X, Y, Z), got {pred.shape}")
        if pred.shape[1] > self.n_steps:
            raise ValueError(f"{pred.shape[1]} steps given, metric built for n_steps={self.n_steps}")
        for b in range(pred.shape[0]):
            self._update_sequence(pred[b], gt[b], inst[b], None if pinst is None else pinst[b],
                                  None if frames is None else frames[b], None if mask is None else mask[b])

    def _thing_voxels(self, labels: np.ndarray, visible: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Flat indices and labels of the (visible) voxels of any thing class in one frame."""
        lut = np.zeros(max(int(labels.max()) + 1, max(self.thing_classes) + 1), dtype=bool)
        lut[list(self.thing_classes)] = True
        flat = np.flatnonzero(lut[labels.reshape(-1)])
        if visible is not None:
            flat = flat[visible.reshape(-1)[flat].astype(bool, copy=False)]
        return flat, labels.reshape(-1)[flat]

    def _update_sequence(self, pred: np.ndarray, gt: np.ndarray, inst: np.ndarray, pinst: np.ndarray | None,
                         frames: Sequence[EgoFrame] | None, mask: np.ndarray | None) -> None:
        n_t = pred.shape[0]
        if frames is not None and len(frames) != n_t:
            raise ValueError("frames must have one EgoFrame per step")
        shape = tuple(pred.shape[1:])
        trackers = {c: InstanceTracker(self.tracking, self.max_track_distance, self.max_age)
                    for c in self.thing_classes}
        for scores in self.scores:
            scores.last_match = {}  # each rollout starts fresh
        next_id = 1
        for t in range(n_t):
            self.sequences_per_step[t] += 1
            visible = None if mask is None else mask[t]
            g_flat, g_lab = self._thing_voxels(gt[t], visible)
            g_ids = inst[t].reshape(-1)[g_flat].astype(np.int64)
            p_flat, p_lab = self._thing_voxels(pred[t], visible)
            for ci, c in enumerate(self.thing_classes):
                sel = g_lab == c
                gsegs = segments_from_ids(g_flat[sel], g_ids[sel], self.min_voxels)
                psel = p_flat[p_lab == c]
                if pinst is not None:
                    psegs = segments_from_ids(psel, pinst[t].reshape(-1)[psel].astype(np.int64), self.min_voxels)
                else:
                    comps = segments_from_ids(psel, connected_components(psel, shape, self.connectivity),
                                              self.min_voxels)
                    cen = segment_centroids(comps, shape, self.grid, None if frames is None else frames[t])
                    _, next_id = trackers[c].assign(comps, cen, next_id)
                    psegs = comps
                iou = iou_matrix(gsegs, psegs)
                for scores in self.scores:
                    scores.score_frame(t, ci, c, iou, gsegs, psegs)

    # ---------------------------------------------------------------- compute
    @staticmethod
    def _ratio(iou_sum: float, tp: int, fp: int, fn: int) -> float | None:
        denom = tp + 0.5 * fp + 0.5 * fn
        return float(iou_sum / denom) if denom > 0 else None

    def compute(self) -> dict:
        """The headline threshold's result at the top level (`settings.iou_threshold` says which), with
        `settings` and `by_threshold`: {threshold_key(t): the same result at t} for every threshold."""
        out = self._compute_one(self.scores[0])
        out["settings"] = {"iou_threshold": self.iou_threshold, "iou_thresholds": list(self.iou_thresholds),
                           "min_voxels": self.min_voxels, "connectivity": self.connectivity,
                           "tracking": self.tracking, "max_track_distance": self.max_track_distance,
                           "max_age": self.max_age}
        out["by_threshold"] = {threshold_key(s.threshold): self._compute_one(s) for s in self.scores}
        return out

    def _compute_one(self, sc: _Scores) -> dict:
        steps = [t for t in range(self.n_steps) if self.sequences_per_step[t] > 0]
        names = [self.class_names[c] for c in self.thing_classes]
        S = np.asarray(steps, dtype=np.int64)
        per_class = {}
        per_class_step = {}
        counts = {}
        for ci, name in enumerate(names):
            per_class[name] = self._ratio(sc.iou_sum[S, ci].sum(), sc.tp[S, ci].sum(), sc.fp[S, ci].sum(),
                                          sc.fn[S, ci].sum())
            per_class_step[name] = [self._ratio(sc.iou_sum[t, ci], sc.tp[t, ci], sc.fp[t, ci], sc.fn[t, ci])
                                    for t in steps]
            counts[name] = {"tp": int(sc.tp[S, ci].sum()), "fp": int(sc.fp[S, ci].sum()),
                            "fn": int(sc.fn[S, ci].sum()), "id_switches": int(sc.id_switches[S, ci].sum()),
                            "gt_segments": int(sc.gt_segments[S, ci].sum())}
        out: dict[str, Any] = {
            "iou_threshold": sc.threshold,
            "tp": int(sc.tp.sum()), "fp": int(sc.fp.sum()), "fn": int(sc.fn.sum()),
            "id_switches": int(sc.id_switches.sum()), "gt_segments": int(sc.gt_segments.sum()),
            "steps": steps, "counts_per_class": counts,
        }
        if sc.gt_segments.sum() == 0:
            out.update(vpq=None, vpq_pooled=None, vpq_per_step=[None for _ in steps],
                       vpq_per_class={n: None for n in names}, vpq_per_class_per_step={n: [None for _ in steps] for n in names},
                       note=("the ground truth has no thing instances: VPQ is undefined "
                             f"({out['fp']} predicted instances were all false positives)"))
            return out
        out["vpq_per_class"] = per_class
        out["vpq_per_class_per_step"] = per_class_step
        valid = [v for v in per_class.values() if v is not None]
        out["vpq"] = float(np.mean(valid)) if valid else None
        out["vpq_pooled"] = self._ratio(sc.iou_sum[S].sum(), sc.tp[S].sum(), sc.fp[S].sum(), sc.fn[S].sum())
        per_step = []
        for k in range(len(steps)):
            vals = [per_class_step[n][k] for n in names if per_class_step[n][k] is not None]
            has_gt = sc.gt_segments[steps[k]].sum() > 0
            per_step.append(float(np.mean(vals)) if vals and has_gt else None)
        out["vpq_per_step"] = per_step
        return out
