"""Where each session goes: a plan area sampled over the whole input, weighted toward built-up tiles.

Session k draws, from numpy's PCG64 seeded (seed, k, 2) (its own stream: the trajectory and traffic streams
are unchanged by it):
1. a level-3 mesh tile among the allowed ones (all, or those `--region` selects), with probability
   proportional to (buildings in the tile + 1): tiles with many buildings are chosen most, tiles without any
   keep a small chance (a dem-only or road-only tile still appears now and then);
2. a centre uniformly inside the tile's data bounding box;
3. the plan area: a `size` x `size` m square around that centre, shifted to lie inside its place's data
   extent, and cut to that extent where the place is smaller than `size`.

When the drawn area cannot hold the session's trajectory (a tile whose data covers a few hundred metres, too
little open space to fly or drive 30 s), the session is drawn again among the other tiles (`exclude`), from the
stream (seed, k, 2, number of tiles excluded): still a function of the seed, the index and the input only.

The plan area (x east, y north, metres in the place's frame) is where the trajectory may go; the voxel world
built for it adds a crop margin (occworld_tokyo.world.region). A session's plan area depends only on the
seed, its index and the index of the input, so any shard computes the same areas as one run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..citymodel import crs as crs_mod
from ..citymodel.index import CityIndex

DEFAULT_REGION_SIZE = 800.0  # m: side of a session's plan area (a 0.93 x 0.93 km voxel world with the margin)
MIN_REGION_SIZE, MAX_REGION_SIZE = 100.0, 20_000.0  # m: the range --region-size accepts (memory is checked too)


@dataclass(frozen=True)
class SessionArea:
    place: int  # CityIndex place id
    plan_area: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax in the place's frame (m)
    tile: str  # the level-3 mesh code drawn in step 1


def tile_weights(index: CityIndex, allowed: dict[int, list[str]]) -> tuple[list[tuple[int, str]], np.ndarray]:
    """The candidate (place id, mesh code) pairs in a fixed order and their sampling weights (buildings + 1)."""
    cands: list[tuple[int, str]] = []
    weights: list[float] = []
    for p in index.places:
        codes = set(allowed.get(p.id, []))
        for code in p.codes:
            if code in codes:
                cands.append((p.id, code))
                weights.append(1.0 + sum(t.buildings for t in p.tiles if t.code == code))
    w = np.asarray(weights, dtype=np.float64)
    return cands, w / w.sum()


def _fit(lo: float, hi: float, centre: float, size: float) -> tuple[float, float]:
    """An interval of length `size` around centre, shifted inside [lo, hi] (or [lo, hi] when it is shorter)."""
    if hi - lo <= size:
        return lo, hi
    a = min(max(centre - size / 2, lo), hi - size)
    return a, a + size


def session_area(index: CityIndex, allowed: dict[int, list[str]], seed: int, session: int,
                 size: float = DEFAULT_REGION_SIZE, exclude: tuple[tuple[int, str], ...] = ()) -> SessionArea | None:
    """The plan area of session `session` (module docstring); `exclude`: (place id, mesh code) pairs already tried
    for this session. None when every allowed tile is excluded."""
    if size <= 0:
        raise ValueError(f"--region-size must be > 0 m (got {size})")
    cands, p = tile_weights(index, allowed)
    if exclude:
        p = np.where([c in exclude for c in cands], 0.0, p)
        if p.sum() <= 0:
            return None
        p = p / p.sum()
    rng = np.random.default_rng([seed, session, 2, len(exclude)] if exclude else [seed, session, 2])
    place_id, code = cands[int(rng.choice(len(cands), p=p))]
    place = next(pl for pl in index.places if pl.id == place_id)
    boxes = np.array([t.bbox for t in place.tiles if t.code == code])
    lat = rng.uniform(boxes[:, 0].min(), boxes[:, 2].max())
    lon = rng.uniform(boxes[:, 1].min(), boxes[:, 3].max())
    x, y = crs_mod.lonlat_to_local(np.array([lon]), np.array([lat]), place.origin.lat, place.origin.lon)
    bx0, by0, bx1, by1 = place.bounds
    x0, x1 = _fit(bx0, bx1, float(x[0]), size)
    y0, y1 = _fit(by0, by1, float(y[0]), size)
    return SessionArea(place_id, (round(x0, 3), round(y0, 3), round(x1, 3), round(y1, 3)), code)
