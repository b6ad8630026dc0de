"""One metric over all voxels and, beside it, the same metric over the visible voxels only.

Occ3D scores occupancy only where the camera sees (`mask_camera`); this project reports both: every voxel of
the grid (OccWorld's convention) and the camera-visible ones (Occ3D's). `AllAndVisible` holds two instances of
any metric whose `update` takes a `mask` keyword (OccupancyMetrics, ReconstructionMetrics, VPQMetric) and feeds
the same inputs to both, the mask to the second only. How each metric applies the mask: docs/metrics.md
("Camera-visible voxels").
"""

from __future__ import annotations

from typing import Any, Callable


class AllAndVisible:
    """`all`: the metric over every voxel; `visible`: the metric under the mask (None when no mask is evaluated).

    `make()` builds one fresh metric object. `update(*args, mask=..., **kwargs)` passes the arguments to both;
    a mask of None counts every voxel in `visible` too (sessions without masks are all-visible)."""

    def __init__(self, make: Callable[[], Any], with_visible: bool) -> None:
        self.all = make()
        self.visible = make() if with_visible else None

    def update(self, *args: Any, mask: Any = None, **kwargs: Any) -> None:
        self.all.update(*args, **kwargs)
        if self.visible is not None:
            self.visible.update(*args, mask=mask, **kwargs)


    def compute(self) -> tuple[Any, Any]:
        """(result over all voxels, result over the visible voxels or None)."""
        return self.all.compute(), None if self.visible is None else self.visible.compute()


def split_results(pairs: dict[str, AllAndVisible]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """{name: pair} -> ({name: all-voxel result}, {name: visible result}, or None when no pair has a mask)."""
    results = {name: p.compute() for name, p in pairs.items()}
    visible = {name: v for name, (_, v) in results.items() if v is not None}
    return {name: a for name, (a, _) in results.items()}, (visible or None)
