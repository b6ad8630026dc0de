"""simulate_traffic: vehicles, pedestrians and other drones moving through a voxel world.

One session's traffic is simulated once, at a fixed internal step (<= `TrafficSpec.substep`, an integer
fraction of the frame interval), starting `warmup` seconds before frame 0 so that traffic is flowing,
and sampled at every frame. All randomness comes from the one rng, and every loop runs in a fixed
order, so the same seed gives identical traffic.

The agents: `vehicles.Vehicles` (streets, lanes, IDM, junction signals from `junctions.py`),
`pedestrians.Pedestrians` (sidewalks, crossings), `drones.Drones` (at altitude). Agents never overlap:
after each step, every agent whose new box overlaps another's goes back to where it was (stopped);
repeated until no box overlaps (the previous step had none, so this ends).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..trajectories.common import as_generator
from .drones import Drones
from .groups import AgentGroup, AgentRaster, IdSource
from .junctions import build_junctions
from .pedestrians import Pedestrians
from .specs import AGENT_CLASSES, TrafficDensity, TrafficSpec
from .states import AgentStates, TrafficRecording, overlapping_pairs
from .streets import StreetNetwork, build_network, clearance_map, lookup, passable_columns, region_mask
from .vehicles import Vehicles


def _area_km2(world: Any, region: tuple[float, float, float, float] | None) -> float:
    x0, y0, x1, y1 = world.bounds_xy
    if region is not None:
        x0, y0, x1, y1 = max(x0, region[0]), max(y0, region[1]), min(x1, region[2]), min(y1, region[3])
    return max(x1 - x0, 0.0) * max(y1 - y0, 0.0) / 1e6


def _counts(world: Any, net: StreetNetwork | None, density: TrafficDensity, spec: TrafficSpec,
            region: tuple[float, float, float, float] | None) -> tuple[int, int, int]:
    area = _area_km2(world, region)
    nv = int(round(density.vehicles_per_km2 * area))
    if net is not None:
        nv = min(nv, int(2 * net.edge_length.sum() / spec.min_vehicle_spacing))
    return nv, int(round(density.pedestrians_per_km2 * area)), int(round(density.drones_per_km2 * area))


def _states(groups: list[AgentGroup]) -> AgentStates:
    """The active agents of all groups, sorted by id."""
    parts = [(g, np.nonzero(g.active)[0]) for g in groups]
    ids = np.concatenate([g.ids[a] for g, a in parts])
    order = np.argsort(ids, kind="stable")
    cat = lambda f: np.concatenate([getattr(g, f)[a] for g, a in parts])[order]  # noqa: E731
    kinds = cat("kinds")
    labels = np.array([AGENT_CLASSES[int(k)].label for k in kinds], dtype=np.uint8)
    return AgentStates(ids[order], labels, cat("centers"), cat("sizes"), cat("yaws"), cat("vel"), kinds)


def simulate_traffic(world: Any, n_frames: int, rate_hz: float, rng: np.random.Generator | int,
                     density: TrafficDensity = TrafficDensity(), *,
                     region: tuple[float, float, float, float] | None = None,
                     spec: TrafficSpec = TrafficSpec()) -> TrafficRecording:
    """Simulate one session's moving agents; frame i is at time i / rate_hz (module docstring).

    world: a VoxelWorld (x0, y0, z0, voxel_size, objects, object_label, object_instance, ground, top,
    ground_height, bounds_xy). region: (xmin, ymin, xmax, ymax) world metres to populate (default: the
    whole world); densities are per km^2 of it. rng: a numpy Generator or an int seed.
    """
    import time

    t_start = time.perf_counter()
    if n_frames < 0 or rate_hz <= 0:
        raise ValueError("n_frames must be >= 0 and rate_hz > 0")
    rng = as_generator(rng)
    if density.static or n_frames == 0:
        return TrafficRecording([AgentStates.empty() for _ in range(n_frames)], rate_hz,
                                {"vehicles": 0, "pedestrians": 0, "drones": 0})
    ids = IdSource(world)
    rmask = region_mask(world, region)
    net = build_network(world, spec, region) if density.vehicles_per_km2 > 0 else None
    nv, npd, nd = _counts(world, net, density, spec, region)
    veh_allowed = lookup(world, passable_columns(world, spec.vehicle_clear_height) & rmask)
    if net is None:
        net = StreetNetwork(np.zeros((0, 2)), np.zeros((0, 2), np.int64), (), np.zeros(0), np.zeros(0))
    junctions = build_junctions(net, lookup(world, clearance_map(world, spec.vehicle_clear_height)))
    vehicles = Vehicles(world, net, spec, veh_allowed, nv if net.n_edges else 0, rng, ids, junctions)
    peds = Pedestrians(world, spec, rmask, npd, rng, ids, region if nv > 0 else False)
    drones = Drones(world, spec, region, nd, rng, ids)
    groups = [vehicles.g, peds.g, drones.g]
    nv_, npd_ = vehicles.n, len(peds.g.ids)

    def ground_boxes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a = np.concatenate([vehicles.g.active, peds.g.active])
        c = np.concatenate([vehicles.g.centers, peds.g.centers])[a]
        s = np.concatenate([vehicles.g.sizes, peds.g.sizes])[a]
        y = np.concatenate([vehicles.g.yaws, peds.g.yaws])[a]
        return c, s, y

    for slot in range(vehicles.n):
        vehicles.spawn(slot, ground_boxes())
    raster = AgentRaster(world)
    interval = 1.0 / rate_hz
    n_sub = max(1, int(math.ceil(interval / spec.substep - 1e-9)))
    dt = interval / n_sub
    vehicles.dt = dt
    n_warm = int(math.ceil(spec.warmup / dt))
    frames: list[AgentStates] = []
    total = n_warm + (n_frames - 1) * n_sub
    step_times = []
    for step in range(total + 1):
        if step >= n_warm and (step - n_warm) % n_sub == 0:
            frames.append(_states(groups))
            if len(frames) == n_frames:
                break
        t0 = time.perf_counter()
        _step(vehicles, peds, drones, raster, dt, nv_, npd_)
        vehicles.after_step(ground_boxes)
        step_times.append(time.perf_counter() - t0)
    info = {"vehicles": nv, "pedestrians": int(peds.g.active.sum()), "drones": int(drones.g.active.sum()),
            "street_edges": net.n_edges, "street_km": float(net.edge_length.sum() / 1000),
            "junctions": junctions.n, **vehicles.counts,
            "steps": len(step_times), "step_s": dt, "seconds": time.perf_counter() - t_start}
    return TrafficRecording(frames, rate_hz, info)


def _step(vehicles: Vehicles, peds: Pedestrians, drones: Drones, raster: AgentRaster, dt: float,
          nv: int, npd: int) -> None:
    """One simulation step of all agents, with the no-overlap rule."""
    groups = [vehicles.g, peds.g, drones.g]
    centers = np.concatenate([g.centers for g in groups])
    sizes = np.concatenate([g.sizes for g in groups])
    yaws = np.concatenate([g.yaws for g in groups])
    active = np.concatenate([g.active for g in groups])
    vel = np.concatenate([g.vel for g in groups])
    ground = np.nonzero(active[:nv + npd])[0]
    raster.update(centers[ground], sizes[ground], yaws[ground], ground)
    old = [(g.centers.copy(), g.yaws.copy(), g.vel.copy()) for g in groups]
    old_s, old_v = vehicles.s.copy(), vehicles.v.copy()
    old_heading = peds.heading.copy()
    pv = vehicles.propose(dt, raster, vel, 0)
    pp = peds.propose(dt, raster, nv, vehicles.g.centers[vehicles.g.active, :2])
    pd = drones.propose(dt)
    vehicles.apply(pv, dt)
    peds.apply(pp, dt)
    drones.apply(pd, dt)
    offsets = np.array([0, nv, nv + npd])
    for _ in range(50):
        centers = np.concatenate([g.centers for g in groups])
        yaws = np.concatenate([g.yaws for g in groups])
        act = np.nonzero(np.concatenate([g.active for g in groups]))[0]
        pairs = overlapping_pairs(centers[act], sizes[act], yaws[act])
        if len(pairs) == 0:
            return
        for idx in np.unique(act[pairs.ravel()]):
            gi = int(np.searchsorted(offsets, idx, side="right") - 1)
            slot = idx - offsets[gi]
            g = groups[gi]
            g.centers[slot], g.yaws[slot] = old[gi][0][slot], old[gi][1][slot]
            g.vel[slot] = 0.0
            if gi == 0:
                vehicles.s[slot], vehicles.v[slot] = old_s[slot], 0.0
            elif gi == 1:
                peds.heading[slot] = old_heading[slot] + np.pi / 2
                peds.crossing[slot] = False
    raise RuntimeError("could not resolve overlapping agents")  # unreachable: the old state had none
