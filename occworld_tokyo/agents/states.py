"""AgentStates (all agents at one frame), TrafficRecording (a session), and box geometry helpers.

Boxes: centre (x, y, z) in world metres (z = box centre height), size (length, width, height) with length
along the heading, yaw = heading angle from world +x (east) towards +y (north), counter-clockwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..labels import LABEL_NAMES
from .specs import KIND_NAMES


@dataclass
class AgentStates:
    """All agents present at one frame (K of them)."""

    ids: np.ndarray  # (K,) int32 instance ids, persistent over the session, >= AGENT_ID_BASE
    labels: np.ndarray  # (K,) uint8 storage labels (VEHICLE, PEDESTRIAN, DRONE)
    centers: np.ndarray  # (K, 3) float64 world box centres
    sizes: np.ndarray  # (K, 3) float64 length, width, height
    yaws: np.ndarray  # (K,) float64 heading (rad)
    velocities: np.ndarray  # (K, 3) float64 world m/s
    kinds: np.ndarray | None = None  # (K,) uint8 index into specs.AGENT_CLASSES (car, bus, ...)

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, dtype=np.int32).reshape(-1)
        k = len(self.ids)
        self.labels = np.asarray(self.labels, dtype=np.uint8).reshape(k)
        self.centers = np.asarray(self.centers, dtype=np.float64).reshape(k, 3)
        self.sizes = np.asarray(self.sizes, dtype=np.float64).reshape(k, 3)
        self.yaws = np.asarray(self.yaws, dtype=np.float64).reshape(k)
        self.velocities = np.asarray(self.velocities, dtype=np.float64).reshape(k, 3)
        if self.kinds is not None:
            self.kinds = np.asarray(self.kinds, dtype=np.uint8).reshape(k)

    def __len__(self) -> int:
        return len(self.ids)

    @staticmethod
    def empty() -> "AgentStates":
        z = np.zeros((0, 3))
        return AgentStates(np.zeros(0, np.int32), np.zeros(0, np.uint8), z, z, np.zeros(0), z, np.zeros(0, np.uint8))

    def select(self, keep: np.ndarray) -> "AgentStates":
        keep = np.asarray(keep)
        return AgentStates(self.ids[keep], self.labels[keep], self.centers[keep], self.sizes[keep],
                           self.yaws[keep], self.velocities[keep], None if self.kinds is None else self.kinds[keep])

    def class_names(self) -> list[str]:
        return [LABEL_NAMES[int(l)] for l in self.labels]

    def kind_names(self) -> list[str]:
        if self.kinds is None:
            return self.class_names()
        return [KIND_NAMES[int(k)] for k in self.kinds]


@dataclass
class TrafficRecording:
    """The agents of every frame of one session (frame i at time i / rate_hz)."""

    frames: list[AgentStates]
    rate_hz: float = 2.0
    info: dict = field(default_factory=dict)  # counts, network size, timings (JSON-ready)

    def at(self, i: int) -> AgentStates:
        return self.frames[i]

    def __len__(self) -> int:
        return len(self.frames)

    def all_ids(self) -> np.ndarray:
        return np.unique(np.concatenate([f.ids for f in self.frames])) if self.frames else np.zeros(0, np.int32)


# ------------------------------------------------------------------------------------------ box geometry

def footprint_corners(centers_xy: np.ndarray, sizes: np.ndarray, yaws: np.ndarray, grow: float = 0.0) -> np.ndarray:
    """(K, 4, 2) footprint corners (counter-clockwise from front-left... in box order +x+y, -x+y, -x-y, +x-y)."""
    c = np.asarray(centers_xy, dtype=np.float64).reshape(-1, 2)
    hl = np.asarray(sizes, dtype=np.float64).reshape(-1, 3)[:, 0] / 2 + grow
    hw = np.asarray(sizes, dtype=np.float64).reshape(-1, 3)[:, 1] / 2 + grow
    u = np.stack([np.cos(yaws), np.sin(yaws)], -1)
    v = np.stack([-np.sin(yaws), np.cos(yaws)], -1)
    sl = np.array([1, -1, -1, 1], dtype=np.float64)
    sw = np.array([1, 1, -1, -1], dtype=np.float64)
    return (c[:, None, :] + (sl[None, :, None] * hl[:, None, None]) * u[:, None, :]
            + (sw[None, :, None] * hw[:, None, None]) * v[:, None, :])


def footprint_samples(centers_xy: np.ndarray, sizes: np.ndarray, yaws: np.ndarray, spacing: float = 0.2,
                      grow: float = 0.0) -> np.ndarray:
    """(K, M, 2) points covering each footprint (edges and interior, at most `spacing` apart).

    All boxes get the same number of samples (that of the largest one), so short boxes repeat points.
    """
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 3)
    if len(sizes) == 0:
        return np.zeros((0, 1, 2))
    n_l = int(np.ceil((sizes[:, 0].max() + 2 * grow) / spacing)) + 1
    n_w = int(np.ceil((sizes[:, 1].max() + 2 * grow) / spacing)) + 1
    fl = np.linspace(-0.5, 0.5, n_l)
    fw = np.linspace(-0.5, 0.5, n_w)
    FL, FW = np.meshgrid(fl, fw, indexing="ij")
    FL, FW = FL.ravel(), FW.ravel()
    L = sizes[:, 0:1] + 2 * grow
    W = sizes[:, 1:2] + 2 * grow
    yaws = np.asarray(yaws, dtype=np.float64).reshape(-1, 1)
    a, b = FL[None, :] * L, FW[None, :] * W
    c = np.asarray(centers_xy, dtype=np.float64).reshape(-1, 2)
    x = c[:, 0:1] + np.cos(yaws) * a - np.sin(yaws) * b
    y = c[:, 1:2] + np.sin(yaws) * a + np.cos(yaws) * b
    return np.stack([x, y], -1)


def boxes_overlap(ca: np.ndarray, sa: np.ndarray, ya: np.ndarray, cb: np.ndarray, sb: np.ndarray, yb: np.ndarray,
                  margin: float = 0.0) -> np.ndarray:
    """(P,) whether pairs of 3D boxes (yaw-rotated, z-aligned) overlap (separating axis test).

    ca, cb (P, 3) centres; sa, sb (P, 3) sizes; ya, yb (P,) yaws; margin grows every box by this (m).
    Touching faces (gap exactly 0) do not count as overlap.
    """
    ca, cb = np.asarray(ca, np.float64).reshape(-1, 3), np.asarray(cb, np.float64).reshape(-1, 3)
    sa, sb = np.asarray(sa, np.float64).reshape(-1, 3) + 2 * margin, np.asarray(sb, np.float64).reshape(-1, 3) + 2 * margin
    z_ok = np.abs(ca[:, 2] - cb[:, 2]) < (sa[:, 2] + sb[:, 2]) / 2
    d = cb[:, :2] - ca[:, :2]
    axes = [np.stack([np.cos(ya), np.sin(ya)], -1), np.stack([-np.sin(ya), np.cos(ya)], -1),
            np.stack([np.cos(yb), np.sin(yb)], -1), np.stack([-np.sin(yb), np.cos(yb)], -1)]
    ua, va, ub, vb = axes
    sep = np.zeros(len(ca), dtype=bool)
    for ax in axes:
        ra = (sa[:, 0] / 2) * np.abs(np.sum(ua * ax, -1)) + (sa[:, 1] / 2) * np.abs(np.sum(va * ax, -1))
        rb = (sb[:, 0] / 2) * np.abs(np.sum(ub * ax, -1)) + (sb[:, 1] / 2) * np.abs(np.sum(vb * ax, -1))
        sep |= np.abs(np.sum(d * ax, -1)) >= ra + rb
    return z_ok & ~sep


def overlapping_pairs(centers: np.ndarray, sizes: np.ndarray, yaws: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """(P, 2) index pairs i < j of boxes that overlap (broad phase: a k-d tree on the centres)."""
    from scipy.spatial import cKDTree

    centers = np.asarray(centers, np.float64).reshape(-1, 3)
    if len(centers) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    sizes = np.asarray(sizes, np.float64).reshape(-1, 3)
    r = 0.5 * np.hypot(sizes[:, 0], sizes[:, 1]) + margin
    pairs = cKDTree(centers[:, :2]).query_pairs(2 * float(r.max()), output_type="ndarray")
    if len(pairs) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.sort(pairs, axis=1)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    i, j = pairs[:, 0], pairs[:, 1]
    near = np.hypot(*(centers[i, :2] - centers[j, :2]).T) < r[i] + r[j]
    i, j = i[near], j[near]
    hit = boxes_overlap(centers[i], sizes[i], yaws[i], centers[j], sizes[j], yaws[j], margin)
    return np.stack([i[hit], j[hit]], -1)
