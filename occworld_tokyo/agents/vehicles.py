"""Vehicles: cars, vans, trucks and buses driving the street graph, keeping left, obeying junction signals.

Vehicles drive along the street centreline graph (`streets.StreetNetwork`) on a lane offset to the left of
the centreline (Japan keeps left), turning at random at junctions (never back, unless the street ends).
The lane is the smoothed centreline shifted sideways; every new stretch is swept with the vehicle's
footprint (grown by `body_margin`) against the vehicle-passable columns, and a continuation that does not
fit is not taken. Speed follows the intelligent driver model (IDM): the leader is the first agent whose
footprint lies on the lane ahead (any agent: queues, crossing traffic and pedestrians on the road all stop
a vehicle), and the desired speed is capped before curves by a lateral-acceleration limit. At junctions
(`junctions.py`) an actuated signal serves one pair of opposite approaches at a time and a vehicle enters
the box only when its exit is clear and no conflicting movement is in the way (right of way: left turns
and straight on before right turns); otherwise its stop line is its leader. A vehicle whose street ends
(tile border, a turn it does not fit) leaves the world and a new one (new id) enters elsewhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..labels import VEHICLE
from ..rotations import wrap_angle
from .groups import AgentGroup, AgentRaster, IdSource
from .junctions import Junctions, Movements, Signals
from .paths import LaneBank, LanePath, lane_path, resample
from .specs import AGENT_CLASSES, TrafficSpec, draw_kinds
from .states import footprint_samples, overlapping_pairs
from .streets import ColumnLookup, StreetNetwork


@dataclass
class _Route:
    edges: list[tuple[int, int]]
    centre: np.ndarray  # (n, 2) raw centreline samples every step
    lane: LanePath
    dead_end: bool = False
    runs: list[tuple[int, float, float, int, int]] = field(default_factory=list)  # junction boxes on the lane


class Vehicles:
    def __init__(self, world: Any, net: StreetNetwork, spec: TrafficSpec, allowed: ColumnLookup,
                 n: int, rng: np.random.Generator, ids: IdSource, junctions: Junctions) -> None:
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
        self.g = AgentGroup.make(n)
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
    def propose(self, dt: float, raster: AgentRaster, all_vel: np.ndarray, first_index: int) -> dict:
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
        crossing = is_veh & (np.abs(wrap_angle(other_yaw - yaw[:, :, None])) > np.pi / 4)
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
                        raster: AgentRaster, all_vel: np.ndarray, first_index: int) -> np.ndarray:
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

    def _exit_blocked(self, rows: np.ndarray, raster: AgentRaster, all_vel: np.ndarray, first_index: int) -> np.ndarray:
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
        self.g.yaws[act] = wrap_angle(yaw)
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
                self.spawn(slot, others(), tries=3)
