"""Drone trajectories over a voxel world: survey (lawn-mower), orbit and random-waypoint flights.

How a flight is made (see docs/trajectories.md):
1. an `AltitudeMap` of the world says, per 4 m cell, the allowed height band: at least `min_agl` above
   the terrain and `clearance` above anything standing in a `horizontal_clearance` neighbourhood, at most
   `max_agl` above the terrain (120 m, under the legal 150 m ceiling). Cells where the band is too narrow
   (towers taller than ~100 m) and cells within `border_margin` of the tile edge are no-fly cells;
2. the pattern lays a horizontal route over fly cells only; it is smoothed and given a speed profile
   (cruise 7-12 m/s, slower in curves: lateral acceleration and yaw rate bounded);
3. the height is chosen per 0.1 s sample: a cruise height above the (smoothed) terrain, raised wherever
   the band requires, climb/descent rate limited (raising only), smoothed within the band;
4. one quintic spline of time through (x, y, z) is the flight; poses, velocities and angular velocities
   are its analytic values. The spline is then checked densely (every <= 0.2 m of travel) against the
   real voxel world; a candidate that breaks any band is rejected and another one drawn.

Attitude: yaw follows the horizontal velocity (direction of travel) for every pattern, the orbit included
(option `orbit_yaw="center"` looks at the orbit centre instead). Roll and pitch are those of a multirotor
whose thrust carries it along the curve: body z is parallel to a + g e_z, so the drone leans into turns
and accelerations (a few degrees; at most atan(max_accel / g) ~ 22 deg). `tilt=False` keeps it level.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .common import PlannedMotion, as_generator, polyline_points, raise_limited
from .curves import (
    MotionCurve,
    PlanningError,
    SpeedLimits,
    bounded_smooth,
    frame_times,
    resample_polyline,
    smooth_path,
    speed_profile,
    time_samples,
)
from .maps import AltitudeMap, altitude_map, near_mask, plan_bounds
from .trajectory import Trajectory

log = logging.getLogger(__name__)

DRONE_PATTERNS: tuple[str, ...] = ("survey", "orbit", "waypoints")


@dataclass(frozen=True)
class DroneSpec:
    """Bands and tuning of drone flights (defaults: REFERENCE.md section 5 and the 150 m ceiling)."""

    min_agl: float = 30.0  # m above the terrain, everywhere along the path
    max_agl: float = 120.0  # m above the terrain
    ceiling_agl: float = 150.0  # legal ceiling (Japan's aviation law); max_agl must stay below it
    clearance: float = 10.0  # m above whatever stands below (roofs, trees, bridges)
    horizontal_clearance: float = 6.0  # m: the clearance applies to everything within this radius
    speed_range: tuple[float, float] = (5.0, 15.0)  # m/s, 3D speed band (checked)
    cruise_range: tuple[float, float] = (7.0, 12.0)  # m/s, horizontal cruise drawn per flight
    cruise_agl_range: tuple[float, float] = (40.0, 90.0)  # m, preferred height above terrain
    max_climb_rate: float = 3.0  # m/s
    max_accel: float = 4.0  # m/s^2, total (checked)
    lateral_accel: float = 2.5  # m/s^2, planned in curves
    long_accel: float = 1.0  # m/s^2, planned speed changes
    max_yaw_rate: float = 0.7  # rad/s (checked)
    tilt: bool = True  # multirotor roll/pitch from the acceleration; False = level
    orbit_yaw: str = "travel"  # "travel" (direction of flight) | "center" (look at the orbit centre)
    cell: float = 4.0  # m, altitude map resolution
    border_margin: float = 40.0  # m from the tile edge (keeps the 80 m ego grid inside the tile)
    band_margin: float = 3.0  # m kept inside the altitude band when planning
    survey_spacing_range: tuple[float, float] = (30.0, 60.0)  # m between lanes
    survey_lane_range: tuple[float, float] = (120.0, 400.0)  # m lane length
    orbit_radius_range: tuple[float, float] = (45.0, 150.0)  # m
    orbit_min_relief: float = 25.0  # m: structures at least this tall are orbit centres
    low_orbit_radius_range: tuple[float, float] = (25.0, 40.0)  # m, around lower structures where none is tall
    waypoint_leg_range: tuple[float, float] = (80.0, 250.0)  # m between waypoints
    waypoint_smoothing: float = 18.0  # m (Gaussian sigma along the route)
    waypoint_max_turn: float = 1.75  # rad (~100 deg) between successive legs
    path_step: float = 1.0  # m, route resampling
    sample_dt: float = 0.1  # s, spline knots
    lead_time: float = 4.0  # s of flight before and after the session (keeps spline ends away)
    check_step: float = 0.2  # m of travel between dense checks
    attempts_per_pattern: int = 12
    near_structure_m: float = 30.0  # m: cells this close to a structure (>= 3 m) are "near" (the 80 m grid sees it)
    open_weight: float = 0.02  # relative chance of a start point / waypoint away from every structure

    def __post_init__(self) -> None:
        if not (0 < self.min_agl < self.max_agl <= self.ceiling_agl):
            raise ValueError("need 0 < min_agl < max_agl <= ceiling_agl")
        if not (self.speed_range[0] <= self.cruise_range[0] <= self.cruise_range[1] <= self.speed_range[1]):
            raise ValueError("cruise_range must lie within speed_range")
        if self.orbit_yaw not in ("travel", "center"):
            raise ValueError("orbit_yaw must be 'travel' or 'center'")

    @property
    def limits(self) -> SpeedLimits:
        # horizontal speed bounded so that with the climb rate the 3D speed stays in the band
        v_max_h = float(np.sqrt(max(self.speed_range[1] ** 2 - self.max_climb_rate ** 2, 0.0)))
        return SpeedLimits(self.speed_range[0] + 0.3, v_max_h, self.lateral_accel, self.long_accel,
                           0.85 * self.max_yaw_rate)


# --------------------------------------------------------------------------------------------------
# routes per pattern: each returns (polyline (K, 2), smoothing sigma in m, attitude kwargs)
# --------------------------------------------------------------------------------------------------

Route = tuple[np.ndarray, float, dict]


def _fly_ok(amap: AltitudeMap, fly: np.ndarray, xy: np.ndarray) -> bool:
    i, j, valid = amap.grid.index(xy)
    return bool(np.all(valid & fly[i, j]))


STRUCTURE_RELIEF = 3.0
"""m above the terrain: a column standing at least this high is a structure (building, tree, bridge) for the
near-structure preference and the low orbits."""


def near_structures(amap: AltitudeMap, spec: DroneSpec) -> np.ndarray:
    """(H, W) cells within `spec.near_structure_m` of a structure (`STRUCTURE_RELIEF`)."""
    return near_mask(amap.relief >= STRUCTURE_RELIEF, spec.near_structure_m / amap.grid.cell)


def _is_near(amap: AltitudeMap, near: np.ndarray, xy: np.ndarray) -> bool:
    i, j, valid = amap.grid.index(xy)
    return bool(valid[0] and near[i[0], j[0]])


def _random_fly_point(amap: AltitudeMap, fly: np.ndarray, near: np.ndarray, spec: DroneSpec,
                      rng: np.random.Generator) -> np.ndarray:
    """A point of a fly cell; cells away from every structure (`near` False) are `spec.open_weight` times as
    likely as cells near one, so that flights over sparse (rural) areas start where the grid shows something."""
    ii, jj = np.nonzero(fly)
    if len(ii) == 0:
        raise PlanningError("no cell of the world allows flight in the altitude band")
    w = np.where(near[ii, jj], 1.0, spec.open_weight)
    k = rng.choice(len(ii), p=w / w.sum())
    return amap.grid.centers(ii[k], jj[k]) + rng.uniform(-0.5, 0.5, 2) * amap.grid.cell


def survey_route(amap: AltitudeMap, fly: np.ndarray, near: np.ndarray, spec: DroneSpec, needed: float,
                 rng: np.random.Generator) -> Route:
    """Lawn-mower: parallel lanes joined by U-turns; when one sweep is too short it sweeps back along
    the lanes half-way between, and so on (cross-coverage of the same rectangle).

    The rectangle (lane length x lane count) is drawn at random and shrunk until it fits over fly cells.
    """
    spacing = rng.uniform(*spec.survey_spacing_range)
    lane0 = rng.uniform(*spec.survey_lane_range)
    heading = rng.uniform(0.0, np.pi)
    u = np.array([np.cos(heading), np.sin(heading)])  # along the lanes
    w = np.array([-u[1], u[0]])  # across
    for shrink in 0.8 ** np.arange(8):
        lane = max(lane0 * shrink, spec.survey_lane_range[0] * 0.5)
        n_lanes = int(np.clip(np.ceil(needed / (lane + spacing)), 3, max(3, int(8 * shrink))))
        width = (n_lanes - 1) * spacing
        # the first lane runs through the drawn point (near a structure): the rectangle lies to one side of it
        centre = _random_fly_point(amap, fly, near, spec, rng) + width / 2 * w
        corners = np.array([centre + sx * lane / 2 * u + sy * width / 2 * w for sx in (-1, 1) for sy in (-1, 1)])
        edges = polyline_points(corners[[0, 1, 3, 2, 0]], amap.grid.cell / 2)
        inner = centre + (np.linspace(-0.5, 0.5, 2 * n_lanes)[:, None, None] * width * w
                          + np.linspace(-0.5, 0.5, 64)[None, :, None] * lane * u).reshape(-1, 2)
        if _fly_ok(amap, fly, np.concatenate([edges, inner])):
            break
    else:
        raise PlanningError("no survey rectangle fits over fly cells")
    offsets = list(np.arange(n_lanes, dtype=float)) + list(np.arange(n_lanes - 1.5, 0.0, -1.0))
    verts: list[np.ndarray] = []
    total, k = 0.0, 0
    while total < needed or len(verts) < 4:
        off = offsets[k % len(offsets)]
        a = centre + (off * spacing - width / 2) * w - lane / 2 * u
        b = a + lane * u
        ends = (a, b) if k % 2 == 0 else (b, a)
        if verts:
            total += float(np.linalg.norm(ends[0] - verts[-1]))
        verts.extend(ends)
        total += lane
        k += 1
    return np.array(verts), spacing / 4.0, {}


def orbit_route(amap: AltitudeMap, fly: np.ndarray, near: np.ndarray, spec: DroneSpec, needed: float,
                rng: np.random.Generator) -> Route:
    """Circles around a tall structure; where the world has none, a low orbit (`low_orbit_radius_range`, so that
    the 80 m grid keeps it in view) around a smaller one, or around a random point where nothing stands."""
    radius_range = spec.orbit_radius_range
    tall_i, tall_j = np.nonzero((amap.relief >= spec.orbit_min_relief) & amap.inside)
    if not len(tall_i):
        tall_i, tall_j = np.nonzero((amap.relief >= STRUCTURE_RELIEF) & amap.inside)
        radius_range = spec.low_orbit_radius_range
    if len(tall_i):
        weight = amap.relief[tall_i, tall_j] ** 2  # taller structures are likelier centres
        k = rng.choice(len(tall_i), p=weight / weight.sum())
        centre = amap.relief_xy[tall_i[k], tall_j[k]]  # the tallest column of that cell
    else:
        centre = _random_fly_point(amap, fly, near, spec, rng)
    radius = rng.uniform(*radius_range)
    direction = rng.choice([-1.0, 1.0])
    phase = rng.uniform(0, 2 * np.pi)
    check = centre + radius * np.stack([np.cos(a := np.linspace(0, 2 * np.pi, 720)), np.sin(a)], 1)
    if not _fly_ok(amap, fly, check):
        raise PlanningError("orbit circle crosses no-fly cells")
    turns = needed / (2 * np.pi * radius) + 0.05
    ang = phase + direction * np.linspace(0, 2 * np.pi * turns, int(np.ceil(turns * 2 * np.pi * radius / 0.5)) + 2)
    poly = centre + radius * np.stack([np.cos(ang), np.sin(ang)], 1)
    att = {"yaw_mode": "look_at", "look_at": (float(centre[0]), float(centre[1]))} if spec.orbit_yaw == "center" else {}
    return poly, 0.0, att


def waypoint_route(amap: AltitudeMap, fly: np.ndarray, near: np.ndarray, spec: DroneSpec, needed: float,
                   rng: np.random.Generator) -> Route:
    """Random waypoints with bounded turns between legs; every leg over fly cells; smoothed. A leg ending near a
    structure is preferred: of the first 8 free candidates the first that does, else the first free one."""
    p = _random_fly_point(amap, fly, near, spec, rng)
    heading = rng.uniform(-np.pi, np.pi)
    verts = [p]
    total = 0.0
    while total < needed:
        free: list[tuple[np.ndarray, float, float]] = []
        for attempt in range(40):
            spread = 0.8 if attempt < 20 else 2.0
            turn = float(np.clip(rng.normal(0.0, spread), -spec.waypoint_max_turn, spec.waypoint_max_turn))
            h = heading + turn
            leg = rng.uniform(*spec.waypoint_leg_range) * (1.0 if attempt < 30 else 0.6)
            q = p + leg * np.array([np.cos(h), np.sin(h)])
            if _fly_ok(amap, fly, polyline_points(np.array([p, q]), amap.grid.cell / 2)):
                free.append((q, h, leg))
                if _is_near(amap, near, q) or len(free) == 8:
                    break
        if not free:
            raise PlanningError("no free direction for the next waypoint")
        q, h, leg = next((c for c in free if _is_near(amap, near, c[0])), free[0])
        verts.append(q)
        total += leg
        p, heading = q, h
    return np.array(verts), spec.waypoint_smoothing, {}


ROUTES: dict[str, Callable[..., Route]] = {"survey": survey_route, "orbit": orbit_route, "waypoints": waypoint_route}


# --------------------------------------------------------------------------------------------------
# height profile and checks
# --------------------------------------------------------------------------------------------------


def altitude_profile(amap: AltitudeMap, xy: np.ndarray, spec: DroneSpec, rng: np.random.Generator,
                     dt: float) -> np.ndarray:
    """z (M,) per time sample: cruise height over smoothed terrain, raised into the band, rate-limited."""
    lo, hi, ground, valid = amap.sample(xy)
    if not np.all(valid):
        raise PlanningError("route leaves the tile")
    lo = lo + spec.band_margin
    hi = hi - spec.band_margin
    agl = rng.uniform(*spec.cruise_agl_range)
    z = gaussian_filter1d(ground, 6.0 / dt, mode="nearest") + agl
    z = np.maximum(z, lo)
    z = raise_limited(z, 0.7 * spec.max_climb_rate * dt)
    if np.any(z > hi):
        raise PlanningError("the altitude band is too narrow along the route (towers too tall)")
    return bounded_smooth(z, 2.0 / dt, lower=lo, upper=hi)


def check_drone_curve(curve: MotionCurve, world, spec: DroneSpec) -> list[str]:
    """Dense check of a flight against the world and the spec; returns the problems found (empty = ok)."""
    dt = spec.check_step / spec.speed_range[1]
    t = np.arange(0.0, curve.duration + dt, dt)
    p, v, a, _ = curve.derivatives(t)
    problems: list[str] = []
    xmin, ymin, xmax, ymax = plan_bounds(world)
    if np.any((p[:, 0] < xmin) | (p[:, 0] > xmax) | (p[:, 1] < ymin) | (p[:, 1] > ymax)):
        problems.append("leaves the tile")
        return problems
    agl = p[:, 2] - np.asarray(world.ground_height(p[:, 0], p[:, 1]))
    if agl.min() < spec.min_agl or agl.max() > spec.max_agl:
        problems.append(f"height above ground {agl.min():.1f}..{agl.max():.1f} m outside the band")
    gap = p[:, 2] - np.asarray(world.surface_height(p[:, 0], p[:, 1]))
    if gap.min() < spec.clearance:
        problems.append(f"only {gap.min():.1f} m above the surface")
    if np.any(world.is_occupied(p)):
        problems.append("inside an occupied voxel")
    speed = np.linalg.norm(v, axis=1)
    if speed.min() < spec.speed_range[0] or speed.max() > spec.speed_range[1]:
        problems.append(f"speed {speed.min():.2f}..{speed.max():.2f} m/s outside the band")
    acc = np.linalg.norm(a, axis=1)
    if acc.max() > spec.max_accel:
        problems.append(f"acceleration up to {acc.max():.2f} m/s^2")
    _, _, _, yaw_rate, _, _ = curve.euler(t)
    if np.abs(yaw_rate).max() > spec.max_yaw_rate:
        problems.append(f"yaw rate up to {np.abs(yaw_rate).max():.2f} rad/s")
    return problems


# --------------------------------------------------------------------------------------------------
# planner
# --------------------------------------------------------------------------------------------------


def _plan_once(world, amap: AltitudeMap, fly: np.ndarray, near: np.ndarray, spec: DroneSpec, pattern: str,
               duration: float, rng: np.random.Generator) -> MotionCurve:
    cruise = rng.uniform(*spec.cruise_range)
    span = duration + 2 * spec.lead_time
    needed = span * cruise * 1.15 + 50.0
    poly, sigma, attitude = ROUTES[pattern](amap, fly, near, spec, needed, rng)
    dense = resample_polyline(poly, spec.path_step)
    for widen in (1.0, 1.6, 2.5):  # a curve too tight for the minimum speed gets a wider rounding
        pts = smooth_path(dense, spec.path_step, sigma * widen)
        if not _fly_ok(amap, fly, pts):
            raise PlanningError("smoothed route crosses no-fly cells")
        try:
            speed = speed_profile(pts, cruise, spec.limits)
            break
        except PlanningError:
            if widen == 2.5 or sigma == 0:
                raise
    t, xy = time_samples(pts, speed, span, spec.sample_dt)
    z = altitude_profile(amap, xy, spec, rng, spec.sample_dt)
    curve = MotionCurve.fit(t, np.column_stack([xy, z]), spec.lead_time, duration,
                            tilt_mode="thrust" if spec.tilt else "none", **attitude)
    problems = check_drone_curve(curve, world, spec)
    if problems:
        raise PlanningError("; ".join(problems))
    return curve


def plan_drone_motion(world, n_frames: int, rate_hz: float = 2.0, rng: np.random.Generator | int | None = None,
                      pattern: str | None = None, spec: DroneSpec | None = None) -> PlannedMotion:
    """Plan a drone flight of n_frames at rate_hz; returns the Trajectory and its continuous curve.

    pattern None draws one of DRONE_PATTERNS with rng. If the requested pattern does not fit the world
    the others are tried (a warning is logged and `PlannedMotion.pattern` says which was flown); if none
    fits, PlanningError says what to change.
    """
    spec = spec or DroneSpec()
    rng = as_generator(rng)
    t_frames = frame_times(n_frames, rate_hz)
    duration = float(t_frames[-1])
    if pattern is not None and pattern not in DRONE_PATTERNS:
        raise ValueError(f"unknown drone pattern {pattern!r}; choose one of {DRONE_PATTERNS}")
    first = pattern if pattern is not None else str(rng.choice(DRONE_PATTERNS))
    order = [first] + [p for p in DRONE_PATTERNS if p != first]
    amap = altitude_map(world, spec.cell, spec.min_agl, spec.max_agl, spec.clearance,
                        spec.horizontal_clearance, spec.border_margin)
    fly = amap.feasible(2 * spec.band_margin + 4.0)
    if not fly.any():
        raise PlanningError(
            f"no part of this world is flyable: need cells at least {spec.border_margin:.0f} m inside the tile "
            f"where {spec.min_agl:.0f}-{spec.max_agl:.0f} m above ground clears everything standing by "
            f"{spec.clearance:.0f} m; use a larger tile or lower DroneSpec.border_margin / clearance")
    near = near_structures(amap, spec)
    attempts = 0
    reasons: dict[str, str] = {}
    for pat in order:
        for _ in range(spec.attempts_per_pattern):
            attempts += 1
            try:
                curve = _plan_once(world, amap, fly, near, spec, pat, duration, rng)
            except PlanningError as err:
                reasons[pat] = str(err)
                continue
            if pat != first:
                log.warning("drone pattern %r does not fit this world (%s); flying %r instead",
                            first, reasons.get(first), pat)
            traj = curve.to_trajectory(world, "drone", pat, t_frames)
            return PlannedMotion(traj, curve, pat, pattern, attempts)
    area = fly.sum() * amap.grid.cell ** 2 / 1e6
    raise PlanningError(
        f"cannot plan a {duration:.0f} s drone flight ({n_frames} frames at {rate_hz} Hz) in this world "
        f"(flyable area {area:.3f} km^2; last reasons: {reasons}); use fewer frames, a higher rate_hz, "
        f"or a larger tile")


def plan_drone(world, n_frames: int, rate_hz: float = 2.0, rng: np.random.Generator | int | None = None,
               pattern: str | None = None, spec: DroneSpec | None = None) -> Trajectory:
    """A drone Trajectory of n_frames at rate_hz ("survey", "orbit", "waypoints" or None = random)."""
    return plan_drone_motion(world, n_frames, rate_hz, rng, pattern, spec).trajectory
