"""Rover trajectories: street-level drives routed through free street space of a voxel world.

How a drive is made (see docs/trajectories.md):
1. a `StreetGrid` (1.2 m cells) marks cells whose columns are all free street space (nothing standing
   more than `free_height` above the terrain), their clearance to the nearest occupied column (distance
   transform) and whether they are road (the surface voxel's label is ROAD);
2. routing: a weighted 8-connected graph over the allowed cells (free, clearance >= `clearance`, inside
   the border margin) of a window around a random start (a road cell when the world has roads);
   edge costs prefer road cells and the middle of the street; Dijkstra from the start picks a goal far
   enough for the session (more legs when one is not enough, without U-turns between legs);
3. the cell path is resampled, smoothed (Gaussian along arc length), checked against the voxel columns,
   given a speed profile (cruise 2-4 m/s, slower in corners) and sampled every 0.1 s;
4. height = terrain under the rover (lightly smoothed along the route) + a sensor height drawn in
   0.8-1.2 m; one quintic spline of time through (x, y, z) is the drive. Heading follows the path
   tangent, pitch follows the climb angle (terrain slope along the path), roll stays 0.
The curve is checked densely (every 0.1 m): free columns under the rover and at +-`body_radius`,
sensor 0.5-1.5 m above the terrain, speed, acceleration and yaw-rate bands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from .common import PlannedMotion, as_generator
from .curves import (
    MotionCurve,
    NoStreetSpaceError,
    PlanningError,
    SpeedLimits,
    arc_length,
    frame_times,
    resample_polyline,
    smooth_path,
    speed_profile,
    time_samples,
)
from .maps import StreetGrid, plan_bounds, street_grid
from .trajectory import Trajectory

ROVER_PATTERNS: tuple[str, ...] = ("street",)


@dataclass(frozen=True)
class RoverSpec:
    """Bands and tuning of rover drives (defaults: REFERENCE.md section 5)."""

    sensor_height_range: tuple[float, float] = (0.5, 1.5)  # m above the terrain (checked)
    sensor_height_draw: tuple[float, float] = (0.8, 1.2)  # m, nominal height drawn per drive
    speed_range: tuple[float, float] = (1.0, 5.0)  # m/s (checked)
    cruise_range: tuple[float, float] = (2.0, 4.0)  # m/s drawn per drive
    lateral_accel: float = 1.0  # m/s^2 planned in corners
    long_accel: float = 0.5  # m/s^2 planned speed changes
    max_accel: float = 2.0  # m/s^2 (checked)
    max_yaw_rate: float = 0.8  # rad/s (checked)
    free_height: float = 1.6  # m: a column is street space if nothing stands higher above the terrain
    clearance: float = 1.0  # m: minimum distance of the route's cells to occupied columns
    preferred_clearance: float = 4.0  # m: below this, cells cost more (keeps to the middle of streets)
    road_penalty: float = 1.5  # extra cost factor of non-road cells (when the world has road cells)
    cell: float = 1.2  # m, planning grid
    border_margin: float = 40.0  # m from the tile edge (keeps the 80 m ego grid inside the tile)
    smoothing: float = 2.5  # m, Gaussian sigma along the route
    body_radius: float = 0.3  # m: the dense check also looks this far left/right/ahead/behind
    path_step: float = 0.25  # m
    sample_dt: float = 0.1  # s
    lead_time: float = 3.0  # s of drive before and after the session
    terrain_smoothing: float = 0.8  # s (Gaussian sigma of the terrain height along the drive)
    check_step: float = 0.1  # m of travel between dense checks
    goal_margin: float = 15.0  # m: route legs end at least this far inside the border margin
    max_legs: int = 12
    attempts: int = 8
    near_structure_m: float = 30.0  # m: street cells this close to a non-free column are "near" a structure
    open_weight: float = 0.02  # relative chance of a start cell away from every structure

    def __post_init__(self) -> None:
        lo, hi = self.sensor_height_range
        if not (lo <= self.sensor_height_draw[0] <= self.sensor_height_draw[1] <= hi):
            raise ValueError("sensor_height_draw must lie within sensor_height_range")
        if not (self.speed_range[0] <= self.cruise_range[0] <= self.cruise_range[1] <= self.speed_range[1]):
            raise ValueError("cruise_range must lie within speed_range")

    @property
    def limits(self) -> SpeedLimits:
        return SpeedLimits(self.speed_range[0] + 0.1, self.speed_range[1] - 0.1, self.lateral_accel,
                           self.long_accel, 0.85 * self.max_yaw_rate)


# --------------------------------------------------------------------------------------------------
# routing on the street grid
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreetGraph:
    """The allowed cells of a window as a weighted undirected graph."""

    i0: int
    j0: int
    cells: np.ndarray  # (n, 2) global cell indices of the nodes
    node: np.ndarray  # (h, w) node index per window cell, -1 = not a node
    matrix: object  # scipy CSR adjacency


def cell_cost(sg: StreetGrid, allowed: np.ndarray, spec: RoverSpec) -> np.ndarray:
    """Per-cell cost factor >= 1: non-road cells and cells near buildings cost more."""
    cost = 1.0 + np.clip(spec.preferred_clearance - sg.clearance, 0.0, None) / spec.preferred_clearance
    if (sg.road & allowed).any():
        cost = cost + spec.road_penalty * (~sg.road)
    return cost


def build_graph(allowed: np.ndarray, cost: np.ndarray, cell: float, window: tuple[slice, slice]) -> StreetGraph:
    """8-connected graph of the allowed cells in a window; diagonals only where both sides are allowed."""
    sub = allowed[window]
    c = cost[window]
    node = np.full(sub.shape, -1, dtype=np.int64)
    ii, jj = np.nonzero(sub)
    node[ii, jj] = np.arange(len(ii))
    rows, cols, weights = [], [], []
    h, w = sub.shape
    for di, dj in ((1, 0), (0, 1), (1, 1), (1, -1)):
        a_i, b_i = slice(0, h - di), slice(di, h)
        a_j, b_j = (slice(0, w - dj), slice(dj, w)) if dj >= 0 else (slice(-dj, w), slice(0, w + dj))
        ok = sub[a_i, a_j] & sub[b_i, b_j]
        if di and dj:  # no corner cutting
            ok &= sub[b_i, a_j] & sub[a_i, b_j]
        length = cell * np.hypot(di, dj)
        rows.append(node[a_i, a_j][ok])
        cols.append(node[b_i, b_j][ok])
        weights.append(length * 0.5 * (c[a_i, a_j][ok] + c[b_i, b_j][ok]))
    n = len(ii)
    mat = coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()
    i0, j0 = window[0].start, window[1].start
    return StreetGraph(i0, j0, np.stack([ii + i0, jj + j0], 1), node, mat)


def _path_nodes(pred: np.ndarray, goal: int) -> list[int]:
    out = [goal]
    while pred[out[-1]] >= 0:
        out.append(int(pred[out[-1]]))
    return out[::-1]


def _direction(points: np.ndarray, from_end: bool, span: float = 6.0) -> np.ndarray | None:
    pts = points[::-1] if from_end else points
    s = arc_length(pts)
    k = int(np.searchsorted(s, span))
    k = min(max(k, 1), len(pts) - 1)
    d = (pts[0] - pts[k]) if from_end else (pts[k] - pts[0])
    n = np.linalg.norm(d)
    return d / n if n > 0 else None


def interior(mask: np.ndarray, k: int) -> np.ndarray:
    """Cells of mask at least k cells (4-neighbourhood steps along each axis) from its outside."""
    if k <= 0:
        return mask.copy()
    out = mask.copy()
    out[:k] = out[-k:] = False
    out[:, :k] = out[:, -k:] = False
    out[k:] &= mask[:-k]
    out[:-k] &= mask[k:]
    out[:, k:] &= mask[:, :-k]
    out[:, :-k] &= mask[:, k:]
    return out


def _tree(graph: StreetGraph, source: int) -> tuple[np.ndarray, np.ndarray]:
    dist, pred = dijkstra(graph.matrix, directed=False, indices=source, return_predecessors=True)
    return dist, pred


def _leg_options(sg: StreetGrid, graph: StreetGraph, tree: tuple[np.ndarray, np.ndarray],
                 prev_dir: np.ndarray | None, remaining: float, deep_nodes: np.ndarray,
                 rng: np.random.Generator, near_nodes: np.ndarray, n_try: int = 60) -> list[tuple[int, np.ndarray]]:
    """Candidate legs (goal node, cell-centre polyline) from a shortest-path tree that do not turn back.

    Goals lie away from the border margin and at least min(remaining, 30 m) away; those far enough to
    finish come first, the others by decreasing distance; within each, goals near a structure (`near_nodes`)
    first (rural areas: the drive stays where the grid shows something).
    """
    dist, pred = tree
    reach = np.isfinite(dist) & (dist > 0)
    ok_goal = reach & deep_nodes
    if not ok_goal.any():
        ok_goal = reach
    cand = np.nonzero(ok_goal & (dist >= min(remaining, 30.0)))[0]
    if len(cand) == 0:
        cand = np.nonzero(ok_goal)[0]
    cand = cand[rng.permutation(len(cand))[:n_try]]
    out: list[tuple[int, np.ndarray, float]] = []
    for goal in cand:
        leg = sg.grid.centers(*graph.cells[_path_nodes(pred, int(goal))].T)
        d = _direction(leg, from_end=False)
        if prev_dir is not None and d is not None and float(prev_dir @ d) <= np.cos(np.radians(100)):
            continue
        out.append((int(goal), leg, float(dist[goal])))
    finish = [o for o in out if o[2] >= remaining]
    rest = sorted((o for o in out if o[2] < remaining), key=lambda o: -o[2])
    # goals near a structure first (stable: the order above within each group)
    return [(g, leg) for g, leg, _ in sorted(finish, key=lambda o: not near_nodes[o[0]])
            + sorted(rest, key=lambda o: not near_nodes[o[0]])]


def route_cells(sg: StreetGrid, allowed: np.ndarray, spec: RoverSpec, needed: float,
                rng: np.random.Generator) -> np.ndarray:
    """A route of cell centres (K, 2), at least `needed` m long, through allowed cells."""
    ai, aj = np.nonzero(allowed)
    road = sg.road[ai, aj]
    pool = np.nonzero(road)[0] if road.any() else np.arange(len(ai))
    # start near structures (the grid then shows them); open cells keep a small chance (rural areas)
    w = np.where(sg.clearance[ai[pool], aj[pool]] <= spec.near_structure_m, 1.0, spec.open_weight)
    k = pool[rng.choice(len(pool), p=w / w.sum())]
    start = np.array([ai[k], aj[k]])
    r = int(np.ceil((needed + 30.0) / sg.grid.cell))
    window = (slice(max(0, start[0] - r), min(allowed.shape[0], start[0] + r + 1)),
              slice(max(0, start[1] - r), min(allowed.shape[1], start[1] + r + 1)))
    graph = build_graph(allowed, cell_cost(sg, allowed, spec), sg.grid.cell, window)
    deep = interior(sg.inside, int(np.ceil(spec.goal_margin / sg.grid.cell)))
    current = int(graph.node[start[0] - graph.i0, start[1] - graph.j0])
    deep_nodes = deep[graph.cells[:, 0], graph.cells[:, 1]]
    near_nodes = sg.clearance[graph.cells[:, 0], graph.cells[:, 1]] <= spec.near_structure_m
    pts = sg.grid.centers(*graph.cells[[current]].T)
    length = 0.0
    tree = _tree(graph, current)
    for _leg in range(spec.max_legs):
        prev_dir = _direction(pts, from_end=True) if len(pts) > 1 else None
        options = _leg_options(sg, graph, tree, prev_dir, needed - length, deep_nodes, rng, near_nodes)
        if not options:
            raise PlanningError("every onward route turns back")
        for goal, leg in options[:6]:
            route = np.concatenate([pts, leg[1:]])
            if arc_length(route)[-1] >= needed:
                return route
            # look ahead: from this goal the drive must be able to go on without turning back
            next_tree = _tree(graph, goal)
            if _leg_options(sg, graph, next_tree, _direction(route, from_end=True), 30.0, deep_nodes, rng,
                            near_nodes, 20):
                break
        else:
            raise PlanningError("every onward route ends in a dead end")
        pts, tree = route, next_tree
        length = float(arc_length(pts)[-1])
    raise PlanningError(f"the reachable street network allows only {length:.0f} m of route, {needed:.0f} m needed")


# --------------------------------------------------------------------------------------------------
# checks and planner
# --------------------------------------------------------------------------------------------------


def columns_free(world, xy: np.ndarray, spec: RoverSpec) -> np.ndarray:
    """(N,) True where the column under xy and the columns +-body_radius around it are street space."""
    ok = np.ones(len(xy), dtype=bool)
    r = spec.body_radius
    for dx, dy in ((0, 0), (r, 0), (-r, 0), (0, r), (0, -r)):
        x, y = xy[:, 0] + dx, xy[:, 1] + dy
        rel = np.asarray(world.surface_height(x, y)) - np.asarray(world.ground_height(x, y))
        ok &= rel <= spec.free_height
    return ok


def check_rover_curve(curve: MotionCurve, world, spec: RoverSpec) -> list[str]:
    """Dense check of a drive against the world and the spec; returns the problems (empty = ok)."""
    dt = spec.check_step / spec.speed_range[1]
    t = np.arange(0.0, curve.duration + dt, dt)
    p, v, a, _ = curve.derivatives(t)
    problems: list[str] = []
    xmin, ymin, xmax, ymax = plan_bounds(world)
    if np.any((p[:, 0] < xmin) | (p[:, 0] > xmax) | (p[:, 1] < ymin) | (p[:, 1] > ymax)):
        return ["leaves the tile"]
    if not np.all(columns_free(world, p[:, :2], spec)):
        problems.append("drives through an occupied column")
    h = p[:, 2] - np.asarray(world.ground_height(p[:, 0], p[:, 1]))
    if h.min() < spec.sensor_height_range[0] or h.max() > spec.sensor_height_range[1]:
        problems.append(f"sensor {h.min():.2f}..{h.max():.2f} m above the terrain")
    speed = np.linalg.norm(v, axis=1)
    if speed.min() < spec.speed_range[0] or speed.max() > spec.speed_range[1]:
        problems.append(f"speed {speed.min():.2f}..{speed.max():.2f} m/s outside the band")
    if np.linalg.norm(a, axis=1).max() > spec.max_accel:
        problems.append(f"acceleration up to {np.linalg.norm(a, axis=1).max():.2f} m/s^2")
    yaw_rate = curve.euler(t)[3]
    if np.abs(yaw_rate).max() > spec.max_yaw_rate:
        problems.append(f"yaw rate up to {np.abs(yaw_rate).max():.2f} rad/s")
    return problems


def _smooth_route(world, cells_xy: np.ndarray, spec: RoverSpec, cruise: float) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed, resampled route and its speed; the widest smoothing that stays in street space."""
    dense = resample_polyline(cells_xy, spec.path_step)
    last: PlanningError | None = None
    for factor in (1.0, 1.5, 0.6, 0.35):
        pts = smooth_path(dense, spec.path_step, spec.smoothing * factor)
        if not np.all(columns_free(world, pts, spec)):
            last = PlanningError("smoothed route touches an occupied column")
            continue
        try:
            return pts, speed_profile(pts, cruise, spec.limits)
        except PlanningError as err:
            last = err
    raise last  # type: ignore[misc]


def _plan_once(world, sg: StreetGrid, allowed: np.ndarray, spec: RoverSpec, duration: float,
               rng: np.random.Generator) -> MotionCurve:
    cruise = rng.uniform(*spec.cruise_range)
    height = rng.uniform(*spec.sensor_height_draw)
    span = duration + 2 * spec.lead_time
    needed = span * cruise * 1.2 + 10.0
    cells_xy = route_cells(sg, allowed, spec, needed, rng)
    pts, speed = _smooth_route(world, cells_xy, spec, cruise)
    t, xy = time_samples(pts, speed, span, spec.sample_dt)
    ground = np.asarray(world.ground_height(xy[:, 0], xy[:, 1]), dtype=np.float64)
    z = gaussian_filter1d(ground, spec.terrain_smoothing / spec.sample_dt, mode="nearest") + height
    curve = MotionCurve.fit(t, np.column_stack([xy, z]), spec.lead_time, duration, tilt_mode="climb")
    problems = check_rover_curve(curve, world, spec)
    if problems:
        raise PlanningError("; ".join(problems))
    return curve


def plan_rover_motion(world, n_frames: int, rate_hz: float = 2.0, rng: np.random.Generator | int | None = None,
                      pattern: str | None = None, spec: RoverSpec | None = None) -> PlannedMotion:
    """Plan a rover drive of n_frames at rate_hz; returns the Trajectory and its continuous curve.

    Raises NoStreetSpaceError when the world has no free street space, PlanningError when the street
    network is too small for the requested duration.
    """
    spec = spec or RoverSpec()
    rng = as_generator(rng)
    if pattern is not None and pattern not in ROVER_PATTERNS:
        raise ValueError(f"unknown rover pattern {pattern!r}; choose one of {ROVER_PATTERNS}")
    t_frames = frame_times(n_frames, rate_hz)
    duration = float(t_frames[-1])
    sg = street_grid(world, spec.cell, spec.free_height, spec.border_margin)
    allowed = sg.allowed(spec.clearance)
    if not allowed.any():
        raise NoStreetSpaceError(
            f"this world has no free street space for a rover: no {sg.grid.cell:.1f} m cell at least "
            f"{spec.border_margin:.0f} m inside the tile has all its columns free (nothing standing more than "
            f"{spec.free_height} m above the terrain) with {spec.clearance} m clearance to occupied columns; "
            f"use a tile with streets, or lower RoverSpec.clearance / border_margin")
    reasons: list[str] = []
    for attempt in range(1, spec.attempts + 1):
        try:
            curve = _plan_once(world, sg, allowed, spec, duration, rng)
        except PlanningError as err:
            reasons.append(str(err))
            continue
        traj = curve.to_trajectory(world, "rover", "street", t_frames)
        return PlannedMotion(traj, curve, "street", pattern, attempt)
    raise PlanningError(
        f"cannot plan a {duration:.0f} s rover drive ({n_frames} frames at {rate_hz} Hz) in this world's "
        f"streets ({allowed.sum() * sg.grid.cell ** 2:.0f} m^2 of drivable cells; reasons: {reasons[-3:]}); "
        f"use fewer frames or a larger tile")


def plan_rover(world, n_frames: int, rate_hz: float = 2.0, rng: np.random.Generator | int | None = None,
               pattern: str | None = None, spec: RoverSpec | None = None) -> Trajectory:
    """A rover Trajectory of n_frames at rate_hz along free street space (pattern "street" or None)."""
    return plan_rover_motion(world, n_frames, rate_hz, rng, pattern, spec).trajectory
