"""Where each session goes: a plan area sampled over the whole input, weighted toward the tiles with content.

Session k draws, from numpy's PCG64 seeded (seed, k, 2) (its own stream: the trajectory and traffic streams
are unchanged by it):
1. a level-3 mesh tile among the allowed ones (all, or those `--region` selects), with probability
   `tile_weights`: every content kind of the input (buildings, roads, railways, bridges, vegetation, water,
   furniture, sidewalks: each label but terrain, which lies under everything) gets an equal share of the
   sessions, spread over the tiles in proportion to that kind's objects in them; 5 % of the draws are uniform
   over the tiles, so a dem-only tile still appears now and then. A railway tile next to a hundred building
   tiles is drawn as often as all the building tiles together when railways and buildings are the only kinds;
2. a centre uniformly inside the tile's data bounding box;
3. the plan area: a `size` x `size` m square around that centre, shifted to lie inside its place's data
   extent, and cut to that extent where the place is smaller than `size`, but never below `MIN_PLAN_SIDE`
   (or `size`, when smaller): data smaller than that (a single building, a tile under ~200 m) gets a
   `MIN_PLAN_SIDE` square centred on it, and the world around the data is open ground (world/region.py), so a
   flight or drive fits and keeps the data in view.

When the drawn area cannot hold the session's trajectory (too little open space to fly or drive: towers
everywhere, no street space), the session is drawn again among the other tiles (`exclude`), from the
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
MIN_PLAN_SIDE = 200.0
"""m: the smallest plan area side: the planners keep 40 m from its edges (the 80 m grid stays over the area) and
need room for a low orbit (25-40 m radius), a survey of three 60 m lanes or a street drive inside; a smaller
side holds no drone flight and no rover drive at all."""
MIN_REGION_SIZE, MAX_REGION_SIZE = MIN_PLAN_SIDE, 20_000.0  # m: the range --region-size accepts (memory is checked too)
UNIFORM_SHARE = 0.05  # share of the tile draws that are uniform over the allowed tiles


@dataclass(frozen=True)
class SessionArea:
    place: int  # CityIndex place id
    plan_area: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax in the place's frame (m)
    tile: str  # the level-3 mesh code drawn in step 1


def tile_weights(index: CityIndex, allowed: dict[int, list[str]]) -> tuple[list[tuple[int, str]], np.ndarray]:
    """The candidate (place id, mesh code) pairs in a fixed order and their sampling probabilities: an equal
    share per content kind (every label but terrain) spread by that kind's objects over the tiles, mixed with
    UNIFORM_SHARE uniform over the tiles (module docstring)."""
    from ..labels import TERRAIN

    cands: list[tuple[int, str]] = []
    counts: list[dict[int, int]] = []
    for p in index.places:
        codes = set(allowed.get(p.id, []))
        for code in p.codes:
            if code in codes:
                cands.append((p.id, code))
                c: dict[int, int] = {}
                for t in p.tiles:
                    if t.code == code:
                        for label, n in t.kinds:
                            c[label] = c.get(label, 0) + n
                counts.append(c)
    kinds = sorted({k for c in counts for k, n in c.items() if n > 0 and k != TERRAIN})
    w = np.zeros(len(cands))
    for k in kinds:
        n = np.array([c.get(k, 0) for c in counts], dtype=np.float64)
        w += n / n.sum() / len(kinds)
    uniform = np.full(len(cands), 1.0 / len(cands))
    p = (1.0 - UNIFORM_SHARE) * w + UNIFORM_SHARE * uniform if kinds else uniform
    return cands, p / p.sum()


def _fit(lo: float, hi: float, centre: float, size: float) -> tuple[float, float]:
    """An interval of length `size` around centre, shifted inside [lo, hi]; where [lo, hi] is shorter, [lo, hi]
    itself, or, shorter than min(size, MIN_PLAN_SIDE), that many metres centred on it."""
    if hi - lo <= size:
        side = min(size, MIN_PLAN_SIDE)
        if hi - lo >= side:
            return lo, hi
        mid = (lo + hi) / 2
        return mid - side / 2, mid + side / 2
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
