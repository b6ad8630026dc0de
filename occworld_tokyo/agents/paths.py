"""Lane paths of vehicles: a street centreline polyline -> a smoothed lane on its left (Japan keeps left).

Pure functions on numpy arrays. A lane path is sampled every `step` metres of arc length; position,
heading and curvature at any arc length s are linear interpolations of the samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d


def resample(points: np.ndarray, step: float) -> np.ndarray:
    """(n, 2) polyline -> points every `step` metres of arc length (the last one at most `step` short)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    keep = np.concatenate([[True], seg > 1e-9])
    pts = pts[keep]
    if len(pts) < 2:
        return pts
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    t = np.arange(0.0, s[-1] + 1e-9, step)
    return np.stack([np.interp(t, s, pts[:, 0]), np.interp(t, s, pts[:, 1])], -1)


@dataclass(frozen=True)
class LanePath:
    xy: np.ndarray  # (n, 2) every `step` m
    yaw: np.ndarray  # (n,) unwrapped heading
    kappa: np.ndarray  # (n,) |curvature| 1/m
    step: float

    @property
    def length(self) -> float:
        return (len(self.xy) - 1) * self.step

    def at(self, s: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """(xy (..., 2), yaw (...)) at arc lengths s (clipped to the path)."""
        f = np.clip(np.asarray(s, dtype=np.float64) / self.step, 0, len(self.xy) - 1)
        i0 = np.minimum(np.floor(f).astype(np.int64), len(self.xy) - 2)
        u = f - i0
        xy = self.xy[i0] * (1 - u)[..., None] + self.xy[i0 + 1] * u[..., None]
        return xy, self.yaw[i0] * (1 - u) + self.yaw[i0 + 1] * u

    def project(self, xy: np.ndarray, s_guess: float, window: float = 15.0) -> float:
        """Arc length of the point of the path nearest to xy, searched within `window` m of s_guess."""
        n = len(self.xy)
        lo = int(max(0, np.floor((s_guess - window) / self.step)))
        hi = int(min(n, np.ceil((s_guess + window) / self.step) + 1))
        if hi - lo < 2:
            lo, hi = 0, n
        d = np.linalg.norm(self.xy[lo:hi] - np.asarray(xy)[None], axis=1)
        return float((lo + int(np.argmin(d))) * self.step)


def lane_path(centreline: np.ndarray, offset: float, smoothing: float, step: float) -> LanePath:
    """Smooth a centreline (resampled every `step` m) and shift it `offset` m to the left of travel."""
    c = np.asarray(centreline, dtype=np.float64)
    sigma = smoothing / step
    if len(c) >= 3 and sigma > 0:
        c = np.stack([gaussian_filter1d(c[:, 0], sigma, mode="nearest"),
                      gaussian_filter1d(c[:, 1], sigma, mode="nearest")], -1)
    t = np.gradient(c, axis=0) if len(c) >= 2 else np.array([[1.0, 0.0]])
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    lane = c + offset * np.stack([-t[:, 1], t[:, 0]], -1)
    lane = resample(lane, step)
    if len(lane) < 2:
        lane = np.concatenate([lane, lane + [[step, 0.0]]])
    d = np.gradient(lane, axis=0)
    yaw = np.unwrap(np.arctan2(d[:, 1], d[:, 0]))
    kappa = np.abs(np.gradient(yaw)) / step
    kappa = gaussian_filter1d(kappa, 2.0, mode="nearest")
    return LanePath(lane, yaw, kappa, step)


class LaneBank:
    """The lanes of many vehicles in padded arrays, for vectorised lookups (slot = vehicle)."""

    def __init__(self, n: int, step: float, capacity: int = 256) -> None:
        self.step = step
        self.xy = np.zeros((n, capacity, 2))
        self.yaw = np.zeros((n, capacity))
        self.kappa = np.zeros((n, capacity))
        self.count = np.full(n, 2, dtype=np.int64)

    def set(self, slot: int, lane: LanePath) -> None:
        n = len(lane.xy)
        if n > self.xy.shape[1]:
            grow = max(n, 2 * self.xy.shape[1])
            pad = grow - self.xy.shape[1]
            self.xy = np.pad(self.xy, ((0, 0), (0, pad), (0, 0)))
            self.yaw = np.pad(self.yaw, ((0, 0), (0, pad)))
            self.kappa = np.pad(self.kappa, ((0, 0), (0, pad)))
        self.xy[slot, :n], self.yaw[slot, :n], self.kappa[slot, :n] = lane.xy, lane.yaw, lane.kappa
        self.count[slot] = n

    def at(self, slots: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """xy (..., 2), yaw (...), kappa (...) at arc lengths s (shape (len(slots),) or (len(slots), K))."""
        slots = np.asarray(slots, dtype=np.int64)
        s = np.asarray(s, dtype=np.float64)
        extra = (1,) * (s.ndim - 1)
        last = (self.count[slots] - 1).reshape(-1, *extra)
        f = np.clip(s / self.step, 0, last)
        i0 = np.minimum(np.floor(f).astype(np.int64), last - 1)
        u = f - i0
        rows = slots.reshape(-1, *extra)
        xy = self.xy[rows, i0] * (1 - u)[..., None] + self.xy[rows, i0 + 1] * u[..., None]
        yaw = self.yaw[rows, i0] * (1 - u) + self.yaw[rows, i0 + 1] * u
        kap = self.kappa[rows, i0] * (1 - u) + self.kappa[rows, i0 + 1] * u
        return xy, yaw, kap

    def length(self, slots: np.ndarray) -> np.ndarray:
        return (self.count[np.asarray(slots, dtype=np.int64)] - 1) * self.step
