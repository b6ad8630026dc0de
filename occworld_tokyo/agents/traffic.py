"""simulate_traffic: vehicles, pedestrians and other drones moving through a voxel world.

One session's traffic is simulated once, at a fixed internal step (<= `TrafficSpec.substep`, an integer
fraction of the frame interval), starting `warmup` seconds before frame 0 so that traffic is flowing,
and sampled at every frame. All randomness comes from the one rng, and every loop runs in a fixed
order, so the same seed gives identical traffic.

- Vehicles (`_Vehicles`) drive along the street centreline graph (`streets.StreetNetwork`) on a lane
  offset to the left of the centreline (Japan keeps left), turning at random at junctions (never back,
  unless the street ends). The lane is the smoothed centreline shifted sideways; every new stretch is
  swept with the vehicle's footprint (grown by `body_margin`) against the vehicle-passable columns, and a
  continuation that does not fit is not taken. Speed follows the intelligent driver model (IDM): the
  leader is the first agent whose footprint lies on the lane ahead (any agent: queues, crossing traffic
  and pedestrians on the road all stop a vehicle), and the desired speed is capped before curves by a
  lateral-acceleration limit. At junctions (`junctions.py`) an actuated signal serves one pair of opposite
  approaches at a time and a vehicle enters the box only when its exit is clear and no conflicting movement
  is in the way (right of way: left turns and straight on before right turns); otherwise its stop line is
  its leader. A vehicle whose street ends (tile border, a turn it does not fit) leaves
  the world and a new one (new id) enters elsewhere.
- Pedestrians (`_Pedestrians`) walk along the sidewalk band (passable columns 0.6-3.5 m from the nearest
  obstacle) with a persistent, slowly wandering heading, steering around obstacles and other agents;
  now and then one crosses the street (heading away from the buildings until it reaches the other side).
- Drones (`_Drones`) cruise 30-120 m above the terrain towards random goals, at least 10 m above anything
  within 6 m horizontally (the trajectory planner's altitude map), climbing before obstacles and never
  moving horizontally into a cell they are not yet high enough for.
- Agents never overlap: after each step, every agent whose new box overlaps another's goes back to where
  it was (stopped); repeated until no box overlaps (the previous step had none, so this ends).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..labels import DRONE, PEDESTRIAN, VEHICLE
from ..trajectories.common import as_generator
from ..trajectories.maps import altitude_map
from .junctions import Junctions, Movements, Signals, build_junctions
from .paths import LaneBank, LanePath, lane_path, resample
from .specs import AGENT_CLASSES, AGENT_ID_BASE, TrafficDensity, TrafficSpec, draw_kinds
from .states import AgentStates, TrafficRecording, footprint_samples, overlapping_pairs
from .streets import (ColumnLookup, StreetNetwork, build_network, clearance_map, lookup, passable_columns,
                      region_mask, vehicle_corridor)


def _wrap(a: np.ndarray) -> np.ndarray:
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


class _IdSource:
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
class _Group:
    """The arrays every agent group exposes to the shared step (index = slot)."""

    ids: np.ndarray
    kinds: np.ndarray
    sizes: np.ndarray
    active: np.ndarray
    centers: np.ndarray  # (n, 3) world box centres
    yaws: np.ndarray
    vel: np.ndarray  # (n, 3)

    @staticmethod
    def make(n: int) -> "_Group":
        return _Group(np.zeros(n, np.int64), np.zeros(n, np.int64), np.ones((n, 3)), np.zeros(n, bool),
                      np.zeros((n, 3)), np.zeros(n), np.zeros((n, 3)))


# ============================================================================ obstacle raster (ground agents)

class _AgentRaster:
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


# ============================================================================ vehicles

@dataclass
class _Route:
    edges: list[tuple[int, int]]
    centre: np.ndarray  # (n, 2) raw centreline samples every step
    lane: LanePath
    dead_end: bool = False
    runs: list[tuple[int, float, float, int, int]] = field(default_factory=list)  # junction boxes on the lane


class _Vehicles:
    def __init__(self, world: Any, net: StreetNetwork, spec: TrafficSpec, allowed: ColumnLookup,
                 n: int, rng: np.random.Generator, ids: _IdSource, junctions: Junctions) -> None:
        self.world, self.net, self.spec, self.allowed, self.rng, self.id_source = world, net, spec, allowed, rng, ids
        self.junctions = junctions
        self.signals = Signals(junctions, spec, rng)
        # the next junction box on each vehicle's lane: junction (-1: none), arc lengths, approach (-1: inside)
        self.jc = np.full(n, -1, dtype=np.int64)
        self.j_enter = np.zeros(n)
        self.j_exit = np.zeros(n)
        self.j_app = np.full(n, -1, dtype=np.int64)
        self.j_out = np.full(n, -1, dtype=np.int64)
        self.movements = Movements()
        self.yielding = np.zeros(n, dtype=bool)
        self.claimed = np.zeros(n, dtype=bool)  # has claimed its way through the current junction box
        self.counts = {"junction_passes": 0, "left_street_end": 0, "left_stuck": 0}
        self.g = _Group.make(n)
        self.s = np.zeros(n)
        self.v = np.zeros(n)
        self.v0 = np.zeros(n)
        self.routes: list[_Route | None] = [None] * n
        self.offset = np.full(n, spec.lane_offset)
        self.bank = LaneBank(n, spec.path_step)
        self.waited = np.zeros(n)  # s stopped behind a crossing vehicle
        self.patience = rng.uniform(2.0, 6.0, n)
        self.dt = spec.substep

    @property
    def n(self) -> int:
        return len(self.s)

    # ------------------------------------------------------------------ routes
    def _fits(self, lane: LanePath, size: np.ndarray, s_from: float) -> bool:
        """The footprint swept along the lane from s_from to its end stays in vehicle space."""
        s = np.arange(max(s_from, 0.0), lane.length + 1e-9, 1.0)
        if len(s) == 0:
            return True
        xy, yaw = lane.at(s)
        pts = footprint_samples(xy, np.broadcast_to(size, (len(s), 3)), yaw, spacing=0.4,
                                grow=self.spec.body_margin)
        return bool(self.allowed(pts, outside=False).all())

    def _make_lane(self, centre: np.ndarray, slot: int) -> LanePath:
        return lane_path(centre, self.offset[slot], self.spec.path_smoothing, self.spec.path_step)

    def _use_lane(self, slot: int, lane: LanePath, s: float) -> None:
        """Drive `lane` from arc length s on: the vehicle's lane, its junction boxes and the next one."""
        r = self.routes[slot]
        r.lane = lane
        r.runs = self.junctions.zone_runs(self.net.nodes, lane.xy, lane.step)
        self.bank.set(slot, lane)
        self.s[slot] = s
        self._next_junction(slot)

    def _next_junction(self, slot: int) -> None:
        """Point the vehicle at the first junction box on its lane that its rear has not left."""
        rear = self.s[slot] - self.g.sizes[slot, 0] / 2
        for c, s_in, s_out, app, out in self.routes[slot].runs:
            if s_out > rear:
                self.jc[slot], self.j_enter[slot], self.j_exit[slot] = c, s_in, s_out
                self.j_app[slot], self.j_out[slot] = app, out
                return
        self.jc[slot] = -1

    def _extend(self, slot: int) -> None:
        """Append streets until the lane reaches `lookahead` + 40 m past the vehicle; trim behind it."""
        r = self.routes[slot]
        size = self.g.sizes[slot]
        step = self.spec.path_step
        while not r.dead_end and r.lane.length - self.s[slot] < self.spec.lookahead + 40.0:
            e, d = r.edges[-1]
            node = self.net.end_node(e, d)
            options = [o for o in self.net.outgoing(node) if o != (e, -d)]
            if not options:
                r.dead_end = True
                break
            order = self.rng.permutation(len(options))
            for k in order:
                oe, od = options[k]
                centre = np.concatenate([r.centre, resample(self.net.points(oe, od), step)[1:]])
                lane = self._make_lane(centre, slot)
                if self._fits(lane, size, r.lane.length - 15.0):
                    s_new = lane.project(self.g.centers[slot, :2], self.s[slot])
                    r.edges.append((oe, od))
                    r.centre = centre
                    self._use_lane(slot, lane, s_new)
                    break
            else:
                r.dead_end = True
        keep_behind = 40.0
        if self.s[slot] > keep_behind + 40.0:
            cut = int((self.s[slot] - keep_behind) / step)
            r.centre = r.centre[cut:]
            lane = self._make_lane(r.centre, slot)
            self._use_lane(slot, lane, lane.project(self.g.centers[slot, :2], self.s[slot] - cut * step))

    # ------------------------------------------------------------------ spawning
    def spawn(self, slot: int, others: tuple[np.ndarray, np.ndarray, np.ndarray], tries: int = 20) -> bool:
        """Place a new vehicle in a free spot of a random street; False when none found."""
        net, rng, spec = self.net, self.rng, self.spec
        if net.n_edges == 0:
            return False
        p = net.edge_length / net.edge_length.sum()
        kind = int(draw_kinds(VEHICLE, 1, rng)[0])
        cls = AGENT_CLASSES[kind]
        size = cls.draw_size(rng)
        v0 = rng.uniform(*cls.speed_range)
        for _ in range(tries):
            e = int(rng.choice(net.n_edges, p=p))
            d = 1 if rng.random() < 0.5 else -1
            if net.edge_clearance[e] < self.offset[slot] + size[1] / 2 + spec.body_margin:
                continue
            centre = resample(net.points(e, d), spec.path_step)
            lane = self._make_lane(centre, slot)
            if lane.length < size[0] + 2:
                continue
            s = rng.uniform(size[0] / 2 + 1.0, lane.length - size[0] / 2 - 1.0)
            xy, yaw = lane.at(s)
            z = float(self.world.ground_height(xy[0], xy[1])) + size[2] / 2
            c = np.array([xy[0], xy[1], z])
            if not self._fits(lane, size, max(s - size[0], 0.0)):
                continue
            runs = self.junctions.zone_runs(self.net.nodes, lane.xy, lane.step)
            if any(s_in - 8.0 < s + size[0] / 2 and s - size[0] / 2 < s_out for _, s_in, s_out, _, _ in runs):
                continue  # not in a junction box or right before its stop line
            oc, osz, oy = others
            if len(oc):
                both_c = np.concatenate([oc, c[None]])
                both_s = np.concatenate([osz, size[None]])
                both_y = np.concatenate([oy, [yaw]])
                pairs = overlapping_pairs(both_c, both_s, both_y, margin=1.0)
                if (pairs == len(oc)).any():
                    continue
            g = self.g
            g.ids[slot], g.kinds[slot], g.sizes[slot], g.active[slot] = self.id_source.take(), kind, size, True
            g.centers[slot], g.yaws[slot] = c, yaw
            self.s[slot], self.v0[slot] = s, v0
            self.waited[slot] = 0.0
            self.claimed[slot] = False
            self.v[slot] = v0 * rng.uniform(0.5, 1.0)
            g.vel[slot] = [self.v[slot] * math.cos(yaw), self.v[slot] * math.sin(yaw), 0.0]
            self.routes[slot] = _Route([(e, d)], centre, lane)
            self._use_lane(slot, lane, s)
            self._extend(slot)
            return True
        return False

    # ------------------------------------------------------------------ motion
    def propose(self, dt: float, raster: _AgentRaster, all_vel: np.ndarray, first_index: int) -> dict:
        """IDM step of every active vehicle (vectorised): the new arc lengths s and speeds v."""
        spec = self.spec
        act = np.nonzero(self.g.active)[0]
        new_s, new_v = self.s.copy(), self.v.copy()
        if len(act) == 0:
            return {"s": new_s, "v": new_v}
        k_ahead = np.arange(0.0, spec.lookahead + 1e-9, 1.0)
        size = self.g.sizes[act]
        s = self.s[act]
        d = size[:, :1] / 2 + k_ahead[None, :]  # (A, K) from the centre
        beyond = s[:, None] + d > self.bank.length(act)[:, None]
        xy, yaw, kap = self.bank.at(act, s[:, None] + d)
        lat = np.array([-0.5, -0.25, 0.0, 0.25, 0.5])[None, :] * size[:, 1:2] + \
            np.array([-0.3, 0.0, 0.0, 0.0, 0.3])[None, :]  # (A, 5)
        nrm = np.stack([-np.sin(yaw), np.cos(yaw)], -1)  # (A, K, 2)
        pts = xy[:, :, None, :] + lat[:, None, :, None] * nrm[:, :, None, :]
        hit = raster(pts)  # (A, K, 5)
        own = (first_index + act + 1)[:, None, None]
        other = (hit != 0) & (hit != own)
        # crossing vehicles (heading differs > 45 deg) stop a vehicle only until it loses patience; a
        # vehicle never ignores agents straight ahead in its own direction, nor pedestrians
        n_veh = self.n
        is_veh = (hit - 1 >= first_index) & (hit - 1 < first_index + n_veh)
        other_yaw = self.g.yaws[np.clip(hit - 1 - first_index, 0, n_veh - 1)]
        crossing = is_veh & (np.abs(_wrap(other_yaw - yaw[:, :, None])) > np.pi / 4)
        impatient = (self.waited[act] > self.patience[act])[:, None, None]
        # right of way between crossing vehicles: inside a junction first, then the lower slot
        prio = self._priority()
        mine = prio[act][:, None, None]
        theirs = prio[np.clip(hit - 1 - first_index, 0, n_veh - 1)]
        other &= ~(crossing & (impatient | (mine > theirs)))
        blocked = other.any(axis=2) & ~beyond
        v, v0 = self.v[act], self.v0[act]
        vc = np.sqrt(spec.corner_lateral_accel / np.maximum(kap, 1e-4))
        v_allow = np.sqrt(vc ** 2 + 2 * spec.idm_brake * k_ahead[None, :]).min(axis=1)
        v_des = np.maximum(np.minimum(v0, v_allow), 1.0)
        acc = spec.idm_accel * (1 - (v / v_des) ** 4)
        has = blocked.any(axis=1)
        k = np.argmax(blocked, axis=1)
        rows = np.arange(len(act))
        gap = np.maximum(k_ahead[k], 0.05)
        hk = hit[rows, k]  # (A, 5)
        first = np.argmax((hk != 0) & (hk != own[:, 0]), axis=1)
        leader = np.maximum(hk[rows, first] - 1, 0)
        yk = yaw[rows, k]
        v_lead = np.maximum(all_vel[leader, 0] * np.cos(yk) + all_vel[leader, 1] * np.sin(yk), 0.0)
        s_star = spec.idm_min_gap + v * spec.idm_headway + v * (v - v_lead) / (
            2 * math.sqrt(spec.idm_accel * spec.idm_brake))
        acc = np.where(has, acc - spec.idm_accel * (np.maximum(s_star, 0.0) / gap) ** 2, acc)
        held = has & (gap < 8.0) & (v < 1.0)  # standing behind something
        acc = np.minimum(acc, self._junction_accel(act, v, v_des, held, raster, all_vel, first_index))
        acc = np.clip(acc, -spec.max_brake, spec.idm_accel)
        nv = np.maximum(v + acc * dt, 0.0)
        new_v[act] = nv
        new_s[act] = s + 0.5 * (v + nv) * dt
        return {"s": new_s, "v": new_v}

    def _junction_accel(self, act: np.ndarray, v: np.ndarray, v_des: np.ndarray, held: np.ndarray,
                        raster: _AgentRaster, all_vel: np.ndarray, first_index: int) -> np.ndarray:
        """(A,) IDM acceleration towards the line a vehicle may not pass yet (+inf where there is none): the
        stop line of its next junction while its signal is not green or its exit is not clear (never enter
        a box you cannot leave), or its give-way line inside the box (`Movements`). Also advances the
        signals with the waiting / occupied state seen here."""
        spec = self.spec
        jc, app = self.jc[act], self.j_app[act]
        front = self.s[act] + self.g.sizes[act, 0] / 2
        gap_line = self.j_enter[act] - 1.0 - front
        approaching = (jc >= 0) & (app >= 0) & (gap_line > 0)
        inside = (jc >= 0) & ~approaching
        if self.junctions.n:
            waiting = np.zeros(self.signals.group_of.shape, dtype=bool)
            near = approaching & (gap_line < spec.signal_detect)
            waiting[jc[near], app[near]] = True
            occupied = np.zeros(self.junctions.n, dtype=bool)
            occupied[jc[inside]] = True
            self.signals.step(self.dt, waiting, occupied)
        go = self.signals.may_enter(jc, app, gap_line, v, self.yielding[act] & (gap_line < 3.0))
        check = np.nonzero(approaching & go & (gap_line < 30.0))[0]
        if len(check):
            go[check[self._exit_blocked(act[check], raster, all_vel, first_index)]] = False
        self.claimed[act[approaching & ~go]] = False  # a red light or a full exit cancels a commitment
        line = np.where(approaching & ~go, self.j_enter[act] - 1.0, np.inf)
        self._give_way(act, inside, approaching & go & (gap_line < 40.0), held, gap_line, front, v, line)
        out = np.full(len(act), np.inf)
        stop = np.isfinite(line)
        if stop.any():
            g = line[stop] - front[stop] + spec.idm_min_gap - 0.5  # stand 0.5 m before the line
            vs = v[stop]
            s_star = spec.idm_min_gap + vs * spec.idm_headway + vs * vs / (2 * math.sqrt(spec.idm_accel * spec.idm_brake))
            out[stop] = spec.idm_accel * (1 - (vs / v_des[stop]) ** 4 - (s_star / np.maximum(g, 0.05)) ** 2)
        return out

    def _exit_blocked(self, rows: np.ndarray, raster: _AgentRaster, all_vel: np.ndarray, first_index: int) -> np.ndarray:
        """(R,) bool: a slow vehicle (< 3 m/s along the lane) stands on the lane from the junction box's end to
        one vehicle length (+2.5 m) past it."""
        length = self.g.sizes[rows, 0]
        k = np.arange(0.0, 15.0, 1.0)[None, :]
        xy, yaw, _ = self.bank.at(rows, self.j_exit[rows][:, None] + np.minimum(k, length[:, None] + 2.5))
        lat = np.array([-0.3, 0.0, 0.3])[None, None, :] * self.g.sizes[rows, 1][:, None, None]
        nrm = np.stack([-np.sin(yaw), np.cos(yaw)], -1)
        other = raster(xy[:, :, None, :] + lat[..., None] * nrm[:, :, None, :]) - 1
        is_veh = (other >= first_index) & (other < first_index + self.n) & (other != first_index + rows[:, None, None])
        o = np.clip(other, 0, len(all_vel) - 1)
        along = all_vel[o, 0] * np.cos(yaw)[..., None] + all_vel[o, 1] * np.sin(yaw)[..., None]
        return (is_veh & (along < 3.0)).any(axis=(1, 2))

    def _give_way(self, act: np.ndarray, inside: np.ndarray, coming: np.ndarray, held: np.ndarray,
                  gap_line: np.ndarray, front: np.ndarray, v: np.ndarray, line: np.ndarray) -> None:
        """Conflicts inside a junction box (`Movements`), settled at the stop line: a vehicle with a green
        signal enters the box only when it can cross it without waiting for anyone, so that vehicles in the
        box never block each other.

        It waits at the line while a conflicting vehicle in the box (or committed to enter) is short of the
        conflict area's end, or while a conflicting vehicle with the right of way is due at its own stop line
        within `gap_time` and is not waiting itself (giving way last step, or standing behind something:
        that breaks every waiting cycle). Within stopping distance of the line and not blocked, a vehicle
        commits; vehicles are taken in slot order and a commitment counts at once, so two conflicting
        vehicles never enter together."""
        out = self.j_out[act]
        rel = np.nonzero((self.jc[act] >= 0) & (self.j_app[act] >= 0) & (out >= 0) & (inside | coming))[0]
        yielding = np.zeros(self.n, dtype=bool)
        moves, step = self.movements, self.spec.path_step
        rear = self.s[act] - self.g.sizes[act, 0] / 2
        for j in np.unique(self.jc[act[rel]]):
            members = rel[self.jc[act[rel]] == j]
            if len(np.unique(self.j_app[act[members]])) < 2:
                continue
            keys = [(int(j), int(self.j_app[act[i]]), int(out[i])) for i in members]
            for i, key in zip(members, keys):
                i0, i1 = int(self.j_enter[act[i]] / step), int(self.j_exit[act[i]] / step) + 1
                moves.learn(key, self.bank.xy[act[i], i0:i1], self.bank.yaw[act[i], i0:i1])
            for i, m1 in zip(members, keys):
                if inside[i] or self.claimed[act[i]]:
                    continue
                blocked = False
                for k, m2 in zip(members, keys):
                    c = None if m2[1] == m1[1] else moves.conflict(m1, self._nominal(act[i]), m2, self._nominal(act[k]),
                                                                    step)
                    if c is None:
                        continue
                    if inside[k] or self.claimed[act[k]]:
                        blocked = rear[k] <= self.j_enter[act[k]] + c
                    else:
                        blocked = (not (self.yielding[act[k]] or held[k]) and moves.has_way(m2, m1)
                                   and gap_line[k] < v[k] * moves.gap_time + 5.0)
                    if blocked:
                        break
                if blocked:
                    line[i] = min(line[i], self.j_enter[act[i]] - 1.0)
                    yielding[act[i]] = True
                elif gap_line[i] < v[i] ** 2 / (2 * self.spec.idm_brake) + v[i] * self.dt + 1.0:
                    self.claimed[act[i]] = True
        self.yielding = yielding

    def _nominal(self, slot: int) -> tuple[float, float]:
        """(length, width) of the vehicle's kind, at the top of its size jitter."""
        cls = AGENT_CLASSES[int(self.g.kinds[slot])]
        return (cls.length * (1 + cls.size_jitter), cls.width * (1 + cls.size_jitter))

    def passed_junctions(self) -> None:
        """Vehicles whose rear has left their junction box look for the next one."""
        act = np.nonzero(self.g.active & (self.jc >= 0))[0]
        done = act[self.s[act] - self.g.sizes[act, 0] / 2 > self.j_exit[act]]
        self.counts["junction_passes"] += int(np.sum(self.j_app[done] >= 0))
        self.claimed[done] = False
        for slot in done:
            self._next_junction(int(slot))

    def _priority(self) -> np.ndarray:
        """(n,) right-of-way rank: vehicles within 15 m of a junction node first, then lower slots."""
        inside = np.zeros(self.n, dtype=bool)
        if len(self.net.nodes) and self.n:
            d = np.linalg.norm(self.g.centers[:, None, :2] - self.net.nodes[None], axis=2).min(axis=1)
            inside = d < 15.0
        return inside * (2 * self.n) + (self.n - np.arange(self.n))

    def apply(self, prop: dict, dt: float) -> None:
        """Move active vehicles to the proposed arc lengths (positions, headings, velocities)."""
        act = np.nonzero(self.g.active)[0]
        if len(act) == 0:
            return
        xy, yaw, _ = self.bank.at(act, prop["s"][act])
        z = np.asarray(self.world.ground_height(xy[:, 0], xy[:, 1])) + self.g.sizes[act, 2] / 2
        old = self.g.centers[act].copy()
        self.g.centers[act] = np.column_stack([xy, z])
        self.g.yaws[act] = _wrap(yaw)
        self.g.vel[act] = (self.g.centers[act] - old) / dt
        self.s[act], self.v[act] = prop["s"][act], prop["v"][act]

    def after_step(self, others: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        """Extend routes, retire vehicles at the end of their street (or stuck in a jam longer than
        `max_wait`: they turn off the street), refill empty slots."""
        self.waited = np.where(self.g.active & (self.v < 0.2), self.waited + self.dt, 0.0)
        self.passed_junctions()
        for slot in range(self.n):
            if self.g.active[slot]:
                r = self.routes[slot]
                end = r.dead_end and self.s[slot] >= r.lane.length - self.g.sizes[slot, 0] / 2
                stuck = self.waited[slot] > self.spec.max_wait
                if end or stuck:
                    self.counts["left_street_end" if end else "left_stuck"] += 1
                    self.g.active[slot] = False
                    self.jc[slot] = -1
                    self.routes[slot] = None
                else:
                    self._extend(slot)
        for slot in range(self.n):
            if not self.g.active[slot]:
                if self.spawn(slot, others(), tries=3):
                    pass


# ============================================================================ pedestrians

class _Pedestrians:
    _CANDIDATES = np.array([0.0, 0.35, -0.35, 0.7, -0.7, 1.05, -1.05, 1.4, -1.4, 1.75, -1.75, np.pi])

    def __init__(self, world: Any, spec: TrafficSpec, region: np.ndarray, n: int, rng: np.random.Generator,
                 ids: _IdSource, region_key: tuple[float, float, float, float] | None | bool = None) -> None:
        self.world, self.spec, self.rng = world, spec, rng
        passable = passable_columns(world, spec.person_clear_height) & region
        clear = clearance_map(world, spec.person_clear_height)
        lo, hi = spec.sidewalk_band
        self.clear = lookup(world, np.where(passable, clear, 0.0).astype(np.float32))
        corridor = vehicle_corridor(world, spec, region_key) if region_key is not False else np.zeros_like(passable)
        self.band = lookup(world, passable & (clear >= lo) & (clear <= hi) & ~corridor)
        self.walk = lookup(world, passable & (clear >= lo))
        self.g = _Group.make(n)
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

    def propose(self, dt: float, raster: _AgentRaster, first_index: int, vehicle_xy: np.ndarray) -> dict:
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
        turn = np.clip(_wrap(target - self.g.yaws[act]), -4.0 * dt, 4.0 * dt)
        self.g.yaws[act] = np.where(moving, _wrap(self.g.yaws[act] + turn), self.g.yaws[act])
        self.heading[act] = prop["heading"][act]


# ============================================================================ drones

class _Drones:
    def __init__(self, world: Any, spec: TrafficSpec, region: tuple[float, float, float, float] | None,
                 n: int, rng: np.random.Generator, ids: _IdSource) -> None:
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
        self.g = _Group.make(n)
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
            err = float(_wrap(math.atan2(to_goal[1], to_goal[0]) - self.g.yaws[slot]))
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
            new_yaw[slot] = float(_wrap(yaw))
        return {"c": new_c, "yaw": new_yaw}

    def apply(self, prop: dict, dt: float) -> None:
        act = np.nonzero(self.g.active)[0]
        old = self.g.centers[act].copy()
        self.g.centers[act] = prop["c"][act]
        self.g.yaws[act] = prop["yaw"][act]
        self.g.vel[act] = (self.g.centers[act] - old) / dt


# ============================================================================ the session

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


@dataclass
class _Session:
    groups: list[_Group] = field(default_factory=list)

    def gather(self) -> tuple[np.ndarray, ...]:
        g = self.groups
        return (np.concatenate([x.centers for x in g]), np.concatenate([x.sizes for x in g]),
                np.concatenate([x.yaws for x in g]), np.concatenate([x.active for x in g]),
                np.concatenate([x.vel for x in g]))


def _states(groups: list[_Group]) -> AgentStates:
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
    ids = _IdSource(world)
    rmask = region_mask(world, region)
    net = build_network(world, spec, region) if density.vehicles_per_km2 > 0 else None
    nv, npd, nd = _counts(world, net, density, spec, region)
    veh_allowed = lookup(world, passable_columns(world, spec.vehicle_clear_height) & rmask)
    if net is None:
        net = StreetNetwork(np.zeros((0, 2)), np.zeros((0, 2), np.int64), (), np.zeros(0), np.zeros(0))
    junctions = build_junctions(net, lookup(world, clearance_map(world, spec.vehicle_clear_height)))
    vehicles = _Vehicles(world, net, spec, veh_allowed, nv if net.n_edges else 0, rng, ids, junctions)
    peds = _Pedestrians(world, spec, rmask, npd, rng, ids, region if nv > 0 else False)
    drones = _Drones(world, spec, region, nd, rng, ids)
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
    raster = _AgentRaster(world)
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


def _step(vehicles: _Vehicles, peds: _Pedestrians, drones: _Drones, raster: _AgentRaster, dt: float,
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
