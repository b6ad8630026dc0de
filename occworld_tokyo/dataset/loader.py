"""Data loaders: a resumable, distributed, seeded sampler and the builder that turns a config into loaders.

`ResumableSampler` yields this rank's share of a permutation that depends only on (seed, epoch): the same
on every run and every resume. `start_batch` skips the batches already trained in an interrupted epoch
without loading them, so a resumed run sees exactly the samples the uninterrupted run would have seen.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from occworld_tokyo.dataset.grid_select import GridSelection, select_grid
from occworld_tokyo.dataset.sessions import DataError, SessionInfo, find_sessions
from occworld_tokyo.dataset.windows import OccWindowDataset, SessionPart, Split, split_sessions


class ResumableSampler(Sampler[int]):
    """Indices for one rank: permutation(seed, epoch) padded to a multiple of world_size, every world_size-th."""

    def __init__(self, n: int, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1,
                 batch_size: int = 1) -> None:
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.rank, self.world_size, self.batch_size = rank, world_size, batch_size
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    @property
    def per_rank(self) -> int:
        return math.ceil(self.n / self.world_size)

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(self.per_rank / self.batch_size)

    def indices(self) -> list[int]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n).tolist()
        else:
            order = list(range(self.n))
        total = self.per_rank * self.world_size
        order = (order * math.ceil(total / max(1, self.n)))[:total]  # pad by wrapping, like DistributedSampler
        mine = order[self.rank:total:self.world_size]
        return mine[self.start_batch * self.batch_size:]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices())

    def __len__(self) -> int:
        return len(self.indices())


@dataclass
class DataBundle:
    train: OccWindowDataset
    val: OccWindowDataset
    split: Split
    selection: GridSelection
    sessions: list[SessionInfo]
    rate_hz: float
    notes: list[str]


def given_split(train: list[SessionInfo], val: list[SessionInfo], train_root, val_root) -> Split:
    """`data.val_root`: every session of data_root trains, every session of val_root validates (a split made
    outside, e.g. by area: occworld-tokyo benchmark-forecast). A session in both folders (the same folder, or a
    link) is refused."""
    same = {s.path.resolve() for s in train} & {s.path.resolve() for s in val}
    if same:
        raise DataError(f"data.val_root {val_root} and data_root {train_root} share {len(same)} session(s) "
                        f"({sorted(p.name for p in same)[:3]}); give two folders with different sessions")
    note = f"split given: {len(train)} train sessions in {train_root}, {len(val)} val sessions in {val_root}"
    return Split([SessionPart(s, 0, s.n_frames) for s in train], [SessionPart(s, 0, s.n_frames) for s in val], note)


def build_datasets(cfg: dict, with_instances_val: bool = True, train_visibility: str | None = None) -> DataBundle:
    """Sessions -> split -> train and val window datasets, as the (resolved: config.with_defaults) config says.
    `train_visibility` (e.g. 'camera'): the training windows carry that mask too ('visible')."""
    data = cfg["data"]
    sessions = find_sessions(cfg["data_root"], data["agent_types"])
    hist, fut = int(cfg["history_frames"]), int(cfg["future_frames"])
    window = hist + fut
    if data["val_root"]:
        split = given_split(sessions, find_sessions(data["val_root"], data["agent_types"]), cfg["data_root"],
                            data["val_root"])
        sessions = sessions + [p.session for p in split.val]
    else:
        split = split_sessions(sessions, float(data["val_fraction"]), int(data["split_seed"]), window,
                               data["time_split_gap"])
    grids = {s.grid for s in sessions}
    if len(grids) > 1:
        by_shape = sorted({f"{s.grid.shape}: {s.name}" for s in sessions})
        raise DataError(f"data_root {cfg['data_root']} mixes sessions of different grids ({by_shape[:4]}); "
                        "train on one grid: put default and --grid occ3d sessions in separate folders")
    stored = grids.pop()
    selection = select_grid(cfg["point_cloud_range"], cfg["voxel_size"], stored=stored)
    rates = {s.rate_hz for s in sessions}
    notes = [split.note, f"grid: stored {stored.shape} -> selected {selection.shape} "
                         f"(box {selection.lo}..{selection.hi}, pooling {selection.factor})"]
    if len(rates) > 1:
        notes.append(f"WARNING: sessions have different frame rates {sorted(rates)}; windows mix time steps")
    visibility = cfg["evaluation"]["visibility"]
    if visibility and not all(s.has_masks for s in sessions):
        no_mask = [s.name for s in sessions if not s.has_masks]
        notes.append(f"{len(no_mask)} session(s) have no visibility masks (generated without sensors): "
                     f"treated as all-visible: {no_mask[:5]}")
    train = OccWindowDataset(split.train, hist, fut, selection, stride=int(data["window_stride"]),
                             visibility=train_visibility)
    val = OccWindowDataset(split.val, hist, fut, selection, stride=int(data["val_window_stride"]),
                           with_instances=with_instances_val, visibility=visibility)
    if len(train) == 0 or len(val) == 0:
        raise DataError(f"no {'train' if len(train) == 0 else 'val'} windows of {window} frames: sessions too "
                         "short for history_frames + future_frames; generate more frames per session")
    return DataBundle(train, val, split, selection, sessions, min(rates), notes)


def _worker_init(worker_id: int) -> None:
    info = torch.utils.data.get_worker_info()
    np.random.seed((info.seed if info else worker_id) % 2**32)


def make_loader(dataset: OccWindowDataset, batch_size: int, workers: int, sampler: Sampler | None,
                pin_memory: bool = False, prefetch_factor: int = 2) -> DataLoader:
    """A DataLoader honouring samples_per_gpu / workers_per_gpu (persistent workers when there are any)."""
    kwargs = dict(persistent_workers=True, prefetch_factor=prefetch_factor, worker_init_fn=_worker_init) \
        if workers > 0 else {}
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      pin_memory=pin_memory, drop_last=False, **kwargs)


def measure_loader(loader: DataLoader, max_batches: int = 20) -> dict[str, float]:
    """Frames per second the loader delivers on its own (nothing else running): the number to compare with
    the train step. Frames = batch x window length."""
    t0 = time.perf_counter()
    frames, batches = 0, 0
    first = None
    for batch in loader:
        if first is None:
            first = time.perf_counter() - t0
        frames += int(batch["occ"].shape[0] * batch["occ"].shape[1])
        batches += 1
        if batches >= max_batches:
            break
    dt = time.perf_counter() - t0
    return {"frames": frames, "batches": batches, "seconds": dt, "frames_per_s": frames / dt if dt else 0.0,
            "first_batch_s": first or 0.0}
