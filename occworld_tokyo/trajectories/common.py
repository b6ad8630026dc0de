"""Small pieces both planners share: the result type, rng handling, vectorised rate limiters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .curves import MotionCurve
from .trajectory import Trajectory


@dataclass(frozen=True)
class PlannedMotion:
    """A planner's full answer: the sampled Trajectory and the continuous curve it was sampled from."""

    trajectory: Trajectory
    curve: MotionCurve
    pattern: str  # the pattern actually flown/driven
    requested: str | None  # the pattern asked for (None = drawn at random)
    attempts: int  # planning attempts used (rejected candidates + 1)


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """Accept a Generator or an int seed; refuse None (plans must be reproducible from a seed)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError("rng must be a numpy Generator (e.g. np.random.default_rng(seed)) or an int seed")


def raise_limited(z: np.ndarray, step: float) -> np.ndarray:
    """Smallest z' >= z whose sample-to-sample change is at most `step` in both directions.

    Raising only, so lower bounds that z satisfied still hold (forward pass limits descents, the
    backward pass limits climbs; each is a running max of z + i * step).
    """
    i = np.arange(len(z)) * step
    fwd = np.maximum.accumulate(z + i) - i
    rev = fwd[::-1]
    bwd = np.maximum.accumulate(rev + i) - i
    return bwd[::-1]


def polyline_points(vertices: np.ndarray, step: float) -> np.ndarray:
    """Dense points along the straight segments of a polyline (for map checks)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    out = [vertices[:1]]
    for a, b in zip(vertices[:-1], vertices[1:]):
        n = max(int(np.ceil(np.linalg.norm(b - a) / step)), 1)
        f = np.arange(1, n + 1)[:, None] / n
        out.append(a + f * (b - a))
    return np.concatenate(out)
