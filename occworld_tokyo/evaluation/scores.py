"""Every forecast method scored on the same windows: occupancy mIoU / IoU and VPQ, all and visible voxels, per agent.

`MethodScores` holds, for each method (the learned model's modes, the baselines, the hand-made methods) and each
group of windows ('all', and each agent type present: 'drone', 'rover'), an `AllAndVisible` pair of
OccupancyMetrics and of VPQMetric. `update` takes one method's forecast of a batch with the batch's window ids;
`compute` refuses (ValueError naming the methods) when the methods were not all scored on the same windows, so a
table never compares numbers from different windows.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .visible import AllAndVisible, split_results


class MethodScores:
    def __init__(self, make_occ: Callable[[], Any], make_vpq: Callable[[], Any], with_visible: bool) -> None:
        self._make_occ, self._make_vpq, self._with_visible = make_occ, make_vpq, with_visible
        self.occ: dict[tuple[str, str], AllAndVisible] = {}
        self.vpq: dict[tuple[str, str], AllAndVisible] = {}
        self.windows: dict[str, list[tuple]] = {}
        self.order: list[str] = []

    def _pair(self, store: dict, make: Callable[[], Any], key: tuple[str, str]) -> AllAndVisible:
        if key not in store:
            store[key] = AllAndVisible(make, self._with_visible)
        return store[key]

    def update(self, method: str, windows: Sequence[tuple], agents: Sequence[str], pred, gt, mask, *, gt_np, inst,
               frames, mask_np) -> None:
        """pred, gt (B, T, X, Y, Z) tensors, mask (B, T, X, Y, Z) bool tensor or None; gt_np / inst / mask_np their
        numpy arrays for VPQ; frames: per window the future EgoFrames; windows: (B,) ids; agents: (B,) agent types."""
        if method not in self.windows:
            self.windows[method] = []
            self.order.append(method)
        self.windows[method].extend(tuple(w) for w in windows)
        pred_np = pred.cpu().numpy()
        groups = {"all": list(range(len(agents)))}
        for b, a in enumerate(agents):
            if a is not None:
                groups.setdefault(str(a), []).append(b)
        for group, rows in groups.items():
            sel = slice(None) if len(rows) == len(agents) else rows
            m = None if mask is None else mask[sel]
            self._pair(self.occ, self._make_occ, (method, group)).update(pred[sel], gt[sel], mask=m)
            self._pair(self.vpq, self._make_vpq, (method, group)).update(
                pred_np[sel], gt_np[sel], inst[sel], frames=[frames[b] for b in rows],
                mask=None if mask_np is None else mask_np[sel])

    def drop(self, methods: Sequence[str]) -> None:
        """Forget these methods entirely (e.g. a baseline that cannot be computed on this grid)."""
        for store in (self.occ, self.vpq):
            for key in [k for k in store if k[0] in methods]:
                del store[key]
        for m in methods:
            self.windows.pop(m, None)
        self.order = [m for m in self.order if m not in methods]

    def check_same_windows(self) -> int:
        """The number of windows every method was scored on; ValueError when they differ."""
        if not self.windows:
            return 0
        ref_name = self.order[0]
        ref = sorted(self.windows[ref_name])
        for name in self.order[1:]:
            if sorted(self.windows[name]) != ref:
                raise ValueError(f"forecast methods scored on different windows: {ref_name} on {len(ref)}, {name} on "
                                 f"{len(self.windows[name])}; a table must compare methods on the same windows")
        return len(ref)

    def groups(self) -> list[str]:
        return sorted({g for _, g in self.occ}, key=lambda g: (g != "all", g))

    def compute(self, group: str = "all") -> dict[str, Any]:
        """{'forecast': {method: result}, 'forecast_visible': ..., 'vpq': ..., 'vpq_visible': ...} of one group."""
        self.check_same_windows()
        out: dict[str, Any] = {}
        occ, occ_vis = split_results({m: self.occ[(m, group)] for m in self.order if (m, group) in self.occ})
        vpq, vpq_vis = split_results({m: self.vpq[(m, group)] for m in self.order if (m, group) in self.vpq})
        out["forecast"], out["vpq"] = occ, vpq
        if occ_vis is not None:
            out["forecast_visible"] = occ_vis
        if vpq_vis is not None:
            out["vpq_visible"] = vpq_vis
        return out


def window_agents(dataset, index: np.ndarray) -> tuple[list[tuple[str, int]], list[str]]:
    """A batch's `index` rows (part, start) of an OccWindowDataset -> ((session name, start) ids, agent types);
    without a dataset (a plain list of batches) the ids are (part, start) and the agent types None."""
    rows = np.asarray(index).reshape(-1, 2)
    if dataset is None or not hasattr(dataset, "parts"):
        return [(int(p), int(start)) for p, start in rows], [None] * len(rows)
    ids, agents = [], []
    for p, start in rows:
        session = dataset.parts[int(p)].session
        ids.append((session.name, int(start)))
        agents.append(session.agent_type)
    return ids, agents
