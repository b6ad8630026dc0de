"""Other drones: cruising 30-120 m above the terrain towards random goals.

Drones fly at least 10 m above anything within 6 m horizontally (the trajectory planner's altitude map),
climb before obstacles, and never move horizontally into a cell they are not yet high enough for.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..labels import DRONE
from ..rotations import wrap_angle
from ..trajectories.maps import altitude_map
from .groups import AgentGroup, IdSource
from .specs import AGENT_CLASSES, TrafficSpec, draw_kinds


class Drones:
    def __init__(self, world: Any, spec: TrafficSpec, region: tuple[float, float, float, float] | None,
                 n: int, rng: np.random.Generator, ids: IdSource) -> None:
        self.world, self.spec, self.rng = world, spec, rng
        self.amap = altitude_map(world, 4.0, spec.drone_min_agl, spec.drone_max_agl, spec.drone_clearance,
                                 spec.drone_horizontal_clearance, 5.0)
        fly = self.amap.feasible(5.0)
        if region is not None:
            c = self.amap.grid.centers(*np.meshgrid(np.arange(fly.shape[0]), np.arange(fly.shape[1]), indexing="ij"))
            xmin, ymin, xmax, ymax = region
            fly &= (c[..., 0] >= xmin) & (c[..., 0] < xmax) & (c[..., 1] >= ymin) & (c[..., 1] < ymax)
        self.fly = fly
        self.fly_cells = np.argwhere(fly)
        self.g = AgentGroup.make(n)
        self.speed = np.zeros(n)
        self.agl = np.zeros(n)
        self.goal = np.zeros((n, 2))
        self.vz = np.zeros(n)
        if len(self.fly_cells) == 0 or n == 0:
            return
        kinds = draw_kinds(DRONE, n, rng)
        for slot in range(n):
            cls = AGENT_CLASSES[int(kinds[slot])]
            size = cls.draw_size(rng)
            for _ in range(20):
                xy = self._random_cell_xy()
                lo, hi, ground, valid = self.amap.sample(xy[None])
                agl = rng.uniform(40.0, 100.0)
                z = float(np.clip(ground[0] + agl, lo[0] + 1.0, hi[0] - 1.0))
                c = np.array([xy[0], xy[1], z])
                prev = self.g.centers[:slot][self.g.active[:slot]]
                if len(prev) and np.min(np.linalg.norm(prev - c, axis=1)) < 5.0:
                    continue
                g = self.g
                g.ids[slot], g.kinds[slot], g.sizes[slot], g.active[slot] = ids.take(), int(kinds[slot]), size, True
                g.centers[slot], g.yaws[slot] = c, rng.uniform(-np.pi, np.pi)
                self.speed[slot], self.agl[slot] = rng.uniform(*cls.speed_range), agl
                self.goal[slot] = self._random_cell_xy()
                break

    def _random_cell_xy(self) -> np.ndarray:
        ij = self.fly_cells[self.rng.integers(len(self.fly_cells))]
        return self.amap.grid.centers(ij[0], ij[1]) + self.rng.uniform(-1.5, 1.5, 2)

    def _ok(self, xy: np.ndarray) -> np.ndarray:
        i, j, valid = self.amap.grid.index(xy)
        return valid & self.fly[i, j]

    def propose(self, dt: float) -> dict:
        spec = self.spec
        act = np.nonzero(self.g.active)[0]
        new_c, new_yaw = self.g.centers.copy(), self.g.yaws.copy()
        for slot in act:  # few drones: a plain loop keeps the rules readable
            c = self.g.centers[slot]
            to_goal = self.goal[slot] - c[:2]
            if np.hypot(*to_goal) < 15.0 or not self._ok(self.goal[slot][None])[0]:
                self.goal[slot] = self._random_cell_xy()
                to_goal = self.goal[slot] - c[:2]
            err = float(wrap_angle(math.atan2(to_goal[1], to_goal[0]) - self.g.yaws[slot]))
            yaw = self.g.yaws[slot] + float(np.clip(err, -spec.drone_yaw_rate * dt, spec.drone_yaw_rate * dt))
            v = self.speed[slot] * max(0.3, math.cos(min(abs(err), np.pi / 2)))
            u = np.array([math.cos(yaw), math.sin(yaw)])
            xy = c[:2] + v * dt * u
            ahead = xy[None] + np.arange(0.0, 41.0, 4.0)[:, None] * u[None]
            lo, hi, ground, valid = self.amap.sample(ahead)
            lo_ahead = float(np.max(np.where(valid, lo, -np.inf)))
            z_target = max(float(ground[0]) + self.agl[slot], lo_ahead + 1.0)
            z_target = min(z_target, float(hi[0]) - 1.0)
            vz = float(np.clip((z_target - c[2]) / max(dt, 1e-6), -spec.drone_climb_rate, spec.drone_climb_rate))
            vz = 0.7 * self.vz[slot] + 0.3 * vz
            z = c[2] + vz * dt
            if not (valid[0] and self._ok(xy[None])[0] and z >= float(lo[0])):
                xy = c[:2]  # hover and climb until clear; look for another goal
                z = c[2] + spec.drone_climb_rate * dt if float(self.amap.sample(c[None, :2])[0][0]) > c[2] - 1 else c[2]
                self.goal[slot] = self._random_cell_xy()
            self.vz[slot] = (z - c[2]) / dt
            new_c[slot] = [xy[0], xy[1], z]
            new_yaw[slot] = float(wrap_angle(yaw))
        return {"c": new_c, "yaw": new_yaw}

    def apply(self, prop: dict, dt: float) -> None:
        act = np.nonzero(self.g.active)[0]
        old = self.g.centers[act].copy()
        self.g.centers[act] = prop["c"][act]
        self.g.yaws[act] = prop["yaw"][act]
        self.g.vel[act] = (self.g.centers[act] - old) / dt
