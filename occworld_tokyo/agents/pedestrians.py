"""Pedestrians: walking the sidewalk band, now and then crossing the street.

Pedestrians walk along the sidewalk band (passable columns 0.6-3.5 m from the nearest obstacle, outside
the vehicle corridor) with a persistent, slowly wandering heading, steering around obstacles and other
agents; now and then, with no vehicle near, one crosses the street (heading away from the buildings until
it reaches the other side; vehicles give way).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..labels import PEDESTRIAN
from ..rotations import wrap_angle
from .groups import AgentGroup, AgentRaster, IdSource
from .specs import AGENT_CLASSES, TrafficSpec, draw_kinds
from .streets import clearance_map, lookup, passable_columns, vehicle_corridor


class Pedestrians:
    _CANDIDATES = np.array([0.0, 0.35, -0.35, 0.7, -0.7, 1.05, -1.05, 1.4, -1.4, 1.75, -1.75, np.pi])

    def __init__(self, world: Any, spec: TrafficSpec, region: np.ndarray, n: int, rng: np.random.Generator,
                 ids: IdSource, region_key: tuple[float, float, float, float] | None | bool = None) -> None:
        self.world, self.spec, self.rng = world, spec, rng
        passable = passable_columns(world, spec.person_clear_height) & region
        clear = clearance_map(world, spec.person_clear_height)
        lo, hi = spec.sidewalk_band
        self.clear = lookup(world, np.where(passable, clear, 0.0).astype(np.float32))
        corridor = vehicle_corridor(world, spec, region_key) if region_key is not False else np.zeros_like(passable)
        self.band = lookup(world, passable & (clear >= lo) & (clear <= hi) & ~corridor)
        self.walk = lookup(world, passable & (clear >= lo))
        self.g = AgentGroup.make(n)
        self.speed = np.zeros(n)
        self.crossing = np.zeros(n, bool)
        self.cross_dir = np.zeros(n)
        self.cross_out = np.zeros(n, bool)  # crossed the middle of the street already
        self.cross_t = np.zeros(n)
        self.heading = np.zeros(n)
        band_cells = np.argwhere(self.band.values)
        if len(band_cells) == 0 or n == 0:
            return
        pick = band_cells[rng.choice(len(band_cells), size=min(n, len(band_cells)), replace=False)]
        kinds = draw_kinds(PEDESTRIAN, n, rng)
        placed = 0
        for slot in range(n):
            if slot >= len(pick):
                break
            cls = AGENT_CLASSES[int(kinds[slot])]
            size = cls.draw_size(rng)
            x = world.x0 + (pick[slot, 0] + 0.5) * world.voxel_size[0]
            y = world.y0 + (pick[slot, 1] + 0.5) * world.voxel_size[1]
            c = np.array([x, y, float(world.ground_height(x, y)) + size[2] / 2])
            if placed:
                prev = self.g.centers[:slot][self.g.active[:slot]]
                if np.min(np.hypot(*(prev[:, :2] - c[:2]).T)) < 1.0:
                    continue
            yaw = rng.uniform(-np.pi, np.pi)
            g = self.g
            g.ids[slot], g.kinds[slot], g.sizes[slot], g.active[slot] = ids.take(), int(kinds[slot]), size, True
            g.centers[slot], g.yaws[slot], self.heading[slot] = c, yaw, yaw
            self.speed[slot] = rng.uniform(*cls.speed_range)
            placed += 1

    def _gradient_dir(self, xy: np.ndarray) -> np.ndarray:
        h = 0.8
        gx = self.clear(xy + [h, 0.0], outside=0.0) - self.clear(xy - [h, 0.0], outside=0.0)
        gy = self.clear(xy + [0.0, h], outside=0.0) - self.clear(xy - [0.0, h], outside=0.0)
        return np.arctan2(gy, gx)

    def propose(self, dt: float, raster: AgentRaster, first_index: int, vehicle_xy: np.ndarray) -> dict:
        spec, rng = self.spec, self.rng
        act = np.nonzero(self.g.active)[0]
        n = len(act)
        new_xy = self.g.centers[:, :2].copy()
        new_heading = self.heading.copy()
        if n == 0:
            return {"xy": new_xy, "heading": new_heading}
        xy = self.g.centers[act, :2]
        noise = rng.normal(0.0, spec.heading_noise * math.sqrt(dt), n)
        # crossing: start now and then, heading away from the nearest obstacle; end on the far sidewalk
        start = (~self.crossing[act]) & (rng.random(n) < spec.crossing_rate * dt)
        if start.any() and len(vehicle_xy):  # only with no vehicle near (pedestrians look before crossing)
            idx = np.nonzero(start)[0]
            d = np.linalg.norm(xy[idx, None, :] - vehicle_xy[None], axis=2).min(axis=1)
            start[idx[d < spec.crossing_clear]] = False
        clear_here = self.clear(xy, outside=0.0)
        self.cross_dir[act[start]] = self._gradient_dir(xy[start])
        self.crossing[act[start]] = True
        self.cross_out[act[start]] = False
        self.cross_t[act[start]] = 0.0
        cr = self.crossing[act]
        self.cross_t[act[cr]] += dt
        self.cross_out[act] |= cr & (clear_here > spec.sidewalk_band[1])
        done = cr & ((self.cross_out[act] & (clear_here <= spec.sidewalk_band[1])) | (self.cross_t[act] > 40.0))
        self.crossing[act[done]] = False
        cr = self.crossing[act]
        want = np.where(cr, self.cross_dir[act], self.heading[act] + noise)
        cand = want[:, None] + self._CANDIDATES[None, :]  # (n, C)
        step = (self.speed[act] * dt)[:, None]
        dirs = np.stack([np.cos(cand), np.sin(cand)], -1)
        p_step = xy[:, None, :] + step[..., None] * dirs
        p_look = xy[:, None, :] + 1.0 * dirs
        own = (first_index + act + 1)[:, None]
        ok_walk = np.where(cr[:, None], self.walk(p_step) & self.walk(p_look),
                           self.band(p_step) & self.band(p_look))
        # a pedestrian that left the band (after a crossing attempt) may walk anywhere walkable back into it
        ok_walk |= (~cr[:, None]) & ~self.band(xy)[:, None] & self.walk(p_step) & self.walk(p_look)
        hit_s, hit_l = raster(p_step), raster(p_look)
        # on a crossing, vehicles give way: only other pedestrians are obstacles (no overlap is still enforced)
        veh_s = cr[:, None] & (hit_s - 1 < first_index) & (hit_s > 0)
        veh_l = cr[:, None] & (hit_l - 1 < first_index) & (hit_l > 0)
        ok = ok_walk & ((hit_s == 0) | (hit_s == own) | veh_s) & ((hit_l == 0) | (hit_l == own) | veh_l)
        any_ok = ok.any(axis=1)
        k = np.argmax(ok, axis=1)
        chosen = cand[np.arange(n), k]
        moved = np.where(any_ok[:, None], p_step[np.arange(n), k], xy)
        new_xy[act] = moved
        # stuck: turn somewhere else for the next step
        new_heading[act] = np.where(any_ok, chosen, self.heading[act] + rng.uniform(-np.pi, np.pi, n))
        return {"xy": new_xy, "heading": new_heading}

    def apply(self, prop: dict, dt: float) -> None:
        act = np.nonzero(self.g.active)[0]
        if len(act) == 0:
            return
        xy = prop["xy"][act]
        z = np.asarray(self.world.ground_height(xy[:, 0], xy[:, 1])) + self.g.sizes[act, 2] / 2
        old = self.g.centers[act].copy()
        self.g.centers[act] = np.column_stack([xy, z])
        self.g.vel[act] = (self.g.centers[act] - old) / dt
        moving = np.hypot(*(xy - old[:, :2]).T) > 1e-6
        target = np.arctan2(xy[:, 1] - old[:, 1], xy[:, 0] - old[:, 0])
        turn = np.clip(wrap_angle(target - self.g.yaws[act]), -4.0 * dt, 4.0 * dt)
        self.g.yaws[act] = np.where(moving, wrap_angle(self.g.yaws[act] + turn), self.g.yaws[act])
        self.heading[act] = prop["heading"][act]
