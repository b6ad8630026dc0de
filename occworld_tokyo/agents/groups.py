"""What every group of moving agents shares: state arrays, instance ids, and a raster of their footprints.

- `AgentGroup`: the arrays of one group (vehicles, pedestrians or drones; index = slot) that the shared
  simulation step reads and writes.
- `IdSource`: instance ids in order of appearance, from a base above every city instance id.
- `AgentRaster`: a column raster of the ground agents' footprints (value = global agent index + 1), the
  obstacle map vehicles scan their lane against and pedestrians steer by.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .specs import AGENT_ID_BASE
from .states import footprint_samples
from .streets import lookup


class IdSource:
    """Instance ids in order of appearance, from a base above every city instance id."""

    def __init__(self, world: Any) -> None:
        city_max = int(np.max(world.object_instance)) if len(getattr(world, "object_instance", [])) else 0
        base = AGENT_ID_BASE
        while base <= city_max:
            base += AGENT_ID_BASE
        self.next = base

    def take(self) -> int:
        self.next += 1
        return self.next - 1


@dataclass
class AgentGroup:
    """The arrays every agent group exposes to the shared step (index = slot)."""

    ids: np.ndarray
    kinds: np.ndarray
    sizes: np.ndarray
    active: np.ndarray
    centers: np.ndarray  # (n, 3) world box centres
    yaws: np.ndarray
    vel: np.ndarray  # (n, 3)

    @staticmethod
    def make(n: int) -> "AgentGroup":
        return AgentGroup(np.zeros(n, np.int64), np.zeros(n, np.int64), np.ones((n, 3)), np.zeros(n, bool),
                      np.zeros((n, 3)), np.zeros(n), np.zeros((n, 3)))


class AgentRaster:
    """Column raster of ground agents' footprints: value = global agent index + 1 (0 = none)."""

    def __init__(self, world: Any) -> None:
        self.look = lookup(world, np.zeros(world.objects.shape[:2], dtype=np.int32))
        self._written = np.zeros(0, dtype=np.int64)

    def update(self, centers: np.ndarray, sizes: np.ndarray, yaws: np.ndarray, index: np.ndarray) -> None:
        grid = self.look.values
        flat = grid.reshape(-1)
        flat[self._written] = 0
        if len(index) == 0:
            self._written = np.zeros(0, dtype=np.int64)
            return
        grid_cells, values = [], []
        nx, ny = grid.shape
        big = sizes[:, 0] > 1.0  # vehicles and pedestrians sampled separately (few points for small boxes)
        for sel in (np.nonzero(big)[0], np.nonzero(~big)[0]):
            if len(sel) == 0:
                continue
            pts = footprint_samples(centers[sel, :2], sizes[sel], yaws[sel], spacing=0.3)
            i = np.floor((pts[..., 0] - self.look.x0) / self.look.dx).astype(np.int64)
            j = np.floor((pts[..., 1] - self.look.y0) / self.look.dy).astype(np.int64)
            ok = (i >= 0) & (i < nx) & (j >= 0) & (j < ny)
            grid_cells.append((i * ny + j)[ok])
            values.append(np.broadcast_to((index[sel] + 1)[:, None], i.shape)[ok])
        cell = np.concatenate(grid_cells) if grid_cells else np.zeros(0, np.int64)
        flat[cell] = np.concatenate(values) if values else np.zeros(0, np.int32)
        self._written = cell

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        return self.look(xy, outside=0)
