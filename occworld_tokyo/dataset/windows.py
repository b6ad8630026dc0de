"""Training samples: windows of `history_frames + future_frames` consecutive frames of one session.

Train / val split is BY SESSION: no session contributes windows to both sides. Sessions are shuffled with
a fixed seed inside each agent type and dealt round-robin across types, so val gets drones and rovers alike
and the split is the same on every machine and every run. With a single session there is nothing to split
by: `split_sessions` says so and splits that session by time instead, leaving a gap of at least one window
length between the train frames and the val frames so that no frame is in both.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from occworld_tokyo.dataset.grid_select import GridSelection
from occworld_tokyo.dataset.poses import ego_frames, pose_arrays, relative_poses
from occworld_tokyo.dataset.sessions import DataError, SessionInfo, read_occupancy, read_pose


@dataclass(frozen=True)
class SessionPart:
    """Frames [start, stop) of one session that belong to one side of the split."""

    session: SessionInfo
    start: int
    stop: int


@dataclass(frozen=True)
class Split:
    train: list[SessionPart]
    val: list[SessionPart]
    note: str  # how the split was made, for the log


def split_sessions(sessions: list[SessionInfo], val_fraction: float, seed: int, window: int,
                   gap: int | None = None) -> Split:
    """Deterministic split by session (see module docstring); `window` = frames per sample."""
    if not sessions:
        raise DataError("no sessions to split")
    if len(sessions) == 1:
        s = sessions[0]
        gap = window if gap is None else gap
        n_val = max(window, int(round(s.n_frames * val_fraction)))
        cut = s.n_frames - n_val - gap
        if cut < window:
            raise DataError(f"only one session ({s.name}, {s.n_frames} frames): too short to split by time into "
                            f"train and val windows of {window} frames with a {gap}-frame gap; generate more "
                            "frames or sessions")
        note = (f"only ONE session ({s.name}): no split by session possible; split by time instead: train frames "
                f"[0, {cut}), val frames [{cut + gap}, {s.n_frames}) (gap {gap} frames)")
        return Split([SessionPart(s, 0, cut)], [SessionPart(s, cut + gap, s.n_frames)], note)
    rng = np.random.default_rng(seed)
    groups: dict[str, list[SessionInfo]] = {}
    for s in sorted(sessions, key=lambda s: s.name):
        groups.setdefault(s.agent_type, []).append(s)
    shuffled = [[g[i] for i in rng.permutation(len(g))] for _, g in sorted(groups.items())]
    dealt = [g[i] for i in range(max(map(len, shuffled))) for g in shuffled if i < len(g)]
    n_val = min(len(sessions) - 1, max(1, int(round(len(sessions) * val_fraction))))
    val = sorted(dealt[:n_val], key=lambda s: s.name)
    train = sorted(dealt[n_val:], key=lambda s: s.name)
    note = f"split by session (seed {seed}): {len(train)} train, {len(val)} val: {[s.name for s in val]}"
    return Split([SessionPart(s, 0, s.n_frames) for s in train], [SessionPart(s, 0, s.n_frames) for s in val], note)


class OccWindowDataset(Dataset):
    """Windows of consecutive frames. Item = dict of tensors:

    occ (T, X, Y, Z) uint8 labels; poses (T, 13) float32 relative to the current frame (poses.py);
    ego (T, 5) float64 world x, y, yaw, ground_z of every frame's grid and the agent's world z; index (2,) int64 (part, start frame);
    with `with_instances`: instances (T, X, Y, Z) int32; with `visibility`: visible (T, X, Y, Z) bool
    (all True when the session has no masks). The current frame is index history_frames - 1.
    """

    def __init__(self, parts: list[SessionPart], history: int, future: int, selection: GridSelection,
                 stride: int = 1, with_instances: bool = False, visibility: str | None = None,
                 cache_frames: int = 32) -> None:
        self.parts, self.history, self.future = parts, history, future
        self.window = history + future
        self.selection, self.with_instances, self.visibility = selection, with_instances, visibility
        self.starts: list[tuple[int, int]] = []
        for p_idx, part in enumerate(parts):
            for start in range(part.start, part.stop - self.window + 1, max(1, stride)):
                self.starts.append((p_idx, start))
        self._poses = [pose_arrays([read_pose(p.session.path, i) for i in range(p.session.n_frames)])
                       for p in parts]
        self._cache: OrderedDict = OrderedDict()
        self._cache_frames = cache_frames

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        return self.selection.shape

    def _frame(self, p_idx: int, frame: int) -> dict[str, np.ndarray]:
        key = (p_idx, frame)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        session = self.parts[p_idx].session
        keys = ["occupancy"]
        if self.with_instances:
            keys.append("instances")
        if self.visibility:
            keys.append(f"mask_{self.visibility}")
        raw = read_occupancy(session.path, frame, tuple(keys))
        sel = self.selection
        out = {"occ": sel.apply(raw["occupancy"])}
        if self.with_instances:
            out["instances"] = sel.apply(raw["instances"])
        if self.visibility:
            mask = raw.get(f"mask_{self.visibility}")
            out["visible"] = np.ones(sel.shape, bool) if mask is None else sel.apply(mask, reduce="any")
        self._cache[key] = out
        if len(self._cache) > self._cache_frames:
            self._cache.popitem(last=False)
        return out

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        p_idx, start = self.starts[i]
        frames = [self._frame(p_idx, f) for f in range(start, start + self.window)]
        arrays = {k: v[start:start + self.window] for k, v in self._poses[p_idx].items()}
        ego = np.array([[e.x, e.y, e.yaw, e.ground_z, z] for e, z in zip(ego_frames(arrays), arrays["position"][:, 2])],
                       dtype=np.float64)
        item = {
            "occ": torch.from_numpy(np.stack([f["occ"] for f in frames])),
            "poses": torch.from_numpy(relative_poses(arrays, self.history - 1)),
            "ego": torch.from_numpy(ego),
            "index": torch.tensor([p_idx, start], dtype=torch.int64),
        }
        for key in ("instances", "visible"):
            if key in frames[0]:
                item[key] = torch.from_numpy(np.stack([f[key] for f in frames]))
        return item

    def describe(self, i: int) -> str:
        p_idx, start = self.starts[i]
        return f"{self.parts[p_idx].session.name} frames {start}..{start + self.window - 1}"
