"""The forecast comparison of the report: tables of every method and the "where the model wins and loses" text.

Input: one world-model evaluation's metrics dict (training/evaluate.py, `metrics/epoch_N.json`): `forecast` and
`vpq` over all voxels, `forecast_visible` and `vpq_visible` over the voxels the `visibility` mask marks visible,
per method (`world_model`, `world_model_plan` for a plan-conditioned model, `copy_last`, `ego_warp`,
`ego_warp_fill`, and the hand-made methods named `<mode>+<step>`, e.g. `world_model_plan+voxel_copy`:
evaluation/hand_made.py). Older files
(no visible keys, no plan mode, one VPQ threshold without `by_threshold`) give what they hold and "n/a" elsewhere.

Units: mIoU, IoU and VPQ are shown in % (0-100); a difference is in percentage points. Horizons: 1 / 2 / 3 s
after the current frame and their mean (`avg`, docs/metrics.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

MODES = ("world_model", "world_model_plan")
BASELINES = ("copy_last", "ego_warp", "ego_warp_fill")
METHODS = MODES + BASELINES
HORIZONS = ("1s", "2s", "3s", "avg")
VPQ_THRESHOLDS = ("0.5", "0.2")  # always shown; thresholds found in the data are added after them
TIE_POINTS = 0.05                # |difference| below this (percentage points) is a tie


def pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}"


def voxel_sets(wm: dict) -> list[tuple[str, str]]:
    """(key suffix, words) of the voxel sets the metrics hold: all voxels, then the visible ones."""
    sets = [("", "all voxels")]
    if wm.get("forecast_visible") or wm.get("vpq_visible"):
        sets.append(("_visible", f"{wm.get('visibility') or 'mask'}-visible voxels"))
    return sets


def vpq_thresholds(wm: dict) -> list[str]:
    found = [t for key in ("vpq", "vpq_visible") for v in (wm.get(key) or {}).values()
             for t in (v.get("by_threshold") or {})]
    return list(dict.fromkeys([*VPQ_THRESHOLDS, *found]))


def vpq_at(entry: dict, threshold: str) -> float | None:
    """VPQ of one method's result at one threshold ('0.5'); an older single-threshold result answers only for
    its own threshold (`settings.iou_threshold`, 0.5 when absent)."""
    by = entry.get("by_threshold")
    if by:
        return (by.get(threshold) or {}).get("vpq")
    own = (entry.get("settings") or {}).get("iou_threshold", 0.5)
    return entry.get("vpq") if f"{float(own):g}" == threshold else None


def scores(wm: dict, suffix: str = "") -> dict[str, dict[str, float | None]]:
    """{method: {'miou_1s' .. 'iou_avg', 'vpq_0.5', 'vpq_0.2', ...}} of one voxel set, methods in METHODS order."""
    fc, vpq = wm.get(f"forecast{suffix}") or {}, wm.get(f"vpq{suffix}") or {}
    out: dict[str, dict[str, float | None]] = {}
    for m in [*METHODS, *(k for k in fc if k not in METHODS)]:
        if m not in fc and m not in vpq:
            continue
        row = {f"{k}_{h}": (fc.get(m) or {}).get(f"{k}_{h}") for k in ("miou", "iou") for h in HORIZONS}
        row.update({f"vpq_{t}": vpq_at(vpq.get(m) or {}, t) for t in vpq_thresholds(wm)})
        out[m] = row
    return out


def forecast_tables(wm: dict) -> list[str]:
    """Markdown: one table per voxel set, every method at 1 / 2 / 3 s and avg, VPQ at every threshold."""
    thresholds = vpq_thresholds(wm)
    head = (["mIoU 1 s", "2 s", "3 s", "avg", "IoU 1 s", "2 s", "3 s", "avg"]
            + [f"VPQ IoU>{t}" for t in thresholds])
    lines: list[str] = []
    for suffix, where in voxel_sets(wm):
        table = scores(wm, suffix)
        if not table:
            continue
        lines += [f"Forecast, {where} (%):", "", "| method | " + " | ".join(head) + " |",
                  "|---" * (len(head) + 1) + "|"]
        lines += [f"| {m} | " + " | ".join(pct(v) for v in row.values()) + " |" for m, row in table.items()]
        lines.append("")
    return lines


@dataclass(frozen=True)
class Comparison:
    """One number of one world-model mode against another method's (values 0-1, difference in points)."""

    voxels: str       # 'all voxels' / 'camera-visible voxels'
    mode: str         # world_model / world_model_plan / a hand-made method
    other: str        # a baseline, or world_model for the plan mode
    metric: str       # 'mIoU' / 'IoU' / 'VPQ IoU>0.5' ...
    horizon: str      # '1 s' / '2 s' / '3 s' / 'avg' / 'all steps' (VPQ)
    value: float
    other_value: float

    @property
    def points(self) -> float:
        return 100.0 * (self.value - self.other_value)

    @property
    def outcome(self) -> str:
        return "tie" if abs(self.points) < TIE_POINTS else ("win" if self.points > 0 else "loss")


def is_hand_made(method: str) -> bool:
    """A hand-made method: a model mode with a fixed post-processing step ('world_model_plan+voxel_copy')."""
    return "+" in method and method.split("+", 1)[0] in MODES


def comparisons(wm: dict) -> list[Comparison]:
    """Every world-model mode, and every hand-made method on one, against every baseline (and the plan mode against
    the unconditioned one), per voxel set, metric and horizon where both numbers exist."""
    out: list[Comparison] = []
    for suffix, where in voxel_sets(wm):
        table = scores(wm, suffix)
        for mode in [m for m in MODES if m in table] + [m for m in table if is_hand_made(m)]:
            others = [b for b in BASELINES if b in table] + (["world_model"] if mode != "world_model"
                                                              and "world_model" in table else [])
            for other in others:
                for key, metric, horizon in _metric_keys(wm):
                    a, b = table[mode].get(key), table[other].get(key)
                    if a is not None and b is not None:
                        out.append(Comparison(where, mode, other, metric, horizon, float(a), float(b)))
    return out


def _metric_keys(wm: dict) -> list[tuple[str, str, str]]:
    keys = [(f"{k}_{h}", name, "avg" if h == "avg" else h.replace("s", " s"))
            for k, name in (("miou", "mIoU"), ("iou", "IoU")) for h in HORIZONS]
    return keys + [(f"vpq_{t}", f"VPQ IoU>{t}", "all steps") for t in vpq_thresholds(wm)]


def wins_and_losses(wm: dict) -> list[str]:
    """Plain-language markdown: per voxel set and mode, how many comparisons it wins and loses, and per opponent
    where (metric, horizon) and by how many percentage points."""
    comps = comparisons(wm)
    if not comps:
        return ["- no forecast of the world model and a baseline to compare"]
    lines: list[str] = []
    for where in dict.fromkeys(c.voxels for c in comps):
        for mode in dict.fromkeys(c.mode for c in comps if c.voxels == where):
            mine = [c for c in comps if c.voxels == where and c.mode == mode]
            base = [c for c in mine if c.other in BASELINES]
            wins, losses = (sum(c.outcome == o for c in base) for o in ("win", "loss"))
            lines.append(f"- **{mode}**, {where}: wins {wins} and loses {losses} of {len(base)} comparisons with the "
                         "baselines" + (f" (ties: {len(base) - wins - losses})" if len(base) - wins - losses else "")
                         + ".")
            for other in dict.fromkeys(c.other for c in mine):
                lines.append(f"  - vs {other}: " + "; ".join(_metric_phrases([c for c in mine if c.other == other]))
                             + ".")
    return lines


def _metric_phrases(comps: list[Comparison]) -> list[str]:
    phrases = []
    for metric in dict.fromkeys(c.metric for c in comps):
        parts = []
        for outcome, verb in (("win", "wins"), ("loss", "loses"), ("tie", "ties")):
            hits = [c for c in comps if c.metric == metric and c.outcome == outcome]
            if hits:
                parts.append(f"{verb} " + ", ".join(_at(c) for c in hits))
        phrases.append(f"{metric} " + ", ".join(parts))
    return phrases


def _at(c: Comparison) -> str:
    where = "" if c.horizon == "all steps" else f"at {c.horizon} "
    return f"{where}({c.points:+.1f} points, {pct(c.value)} vs {pct(c.other_value)})"


def comparison_json(wm: dict) -> dict:
    """The tables and comparisons as plain data (the report's metrics.json)."""
    return {"tables": {where: scores(wm, suffix) for suffix, where in voxel_sets(wm)},
            "comparisons": [{**asdict(c), "points": c.points, "outcome": c.outcome} for c in comparisons(wm)]}
