"""Junction zones of the street graph and their traffic signals.

A junction is a cluster of street-graph nodes whose zones overlap (the skeleton often splits one real
crossing into two or three nodes a few metres apart). A node's zone is a disc around it whose radius is
the half width of its widest street (clearance 8-25 m out along the incident edges, clipped to 5-16 m,
+ 1 m): the box where the streets overlap. An *approach* is a street entering the cluster from outside;
only clusters with three or more approaches are junctions (two are just a bend).

Every junction has an actuated signal that serves one group of approaches at a time (the two ends of one
street: approaches more than 140 deg apart), so that crossing streams never share the box:

    green (>= min_green; ends when another group is waiting and this one has no one waiting or max_green
           has passed) -> amber (vehicles that cannot stop comfortably go on) -> all red (>= all_red, and
           until the box is empty) -> green for the next waiting group in turn

With no one waiting elsewhere the green stays. Within a green group, `Movements` tells which paths through
the box conflict and who has the right of way; the vehicles (vehicles.py) wait at the stop line accordingly.
Pure numpy state; the loop over junctions per step is short (a few dozen junctions per square kilometre).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..trajectories.curves import arc_length
from .specs import TrafficSpec
from .states import footprint_samples
from .streets import ColumnLookup, StreetNetwork

GREEN, AMBER, ALL_RED = 0, 1, 2


@dataclass(frozen=True)
class Junctions:
    """Junction zones: node -> cluster (-1 for nodes that are not part of a junction), radii, approaches."""

    node_cluster: np.ndarray  # (N,) int64 junction index or -1
    node_radius: np.ndarray  # (N,) m
    approach_points: tuple[np.ndarray, ...]  # per junction (k, 2): where each approach street enters the box
    approach_groups: tuple[np.ndarray, ...]  # per junction (k,): signal group of each approach

    @property
    def n(self) -> int:
        return len(self.approach_points)

    def zone_runs(self, nodes: np.ndarray, lane_xy: np.ndarray, step: float) -> list[tuple[int, float, float, int, int]]:
        """(junction, s_enter, s_exit, approach, exit) of every stretch of a lane (sampled every `step` m) in a
        box. approach / exit = index of the junction's approach street nearest the lane where it enters / leaves
        the box (-1 when the lane starts / ends inside it)."""
        member = np.nonzero(self.node_cluster >= 0)[0]
        if len(member) == 0 or len(lane_xy) == 0:
            return []
        d = np.linalg.norm(lane_xy[:, None, :] - nodes[member][None], axis=2) - self.node_radius[member][None]
        k = np.argmin(d, axis=1)
        zone = np.where(d[np.arange(len(lane_xy)), k] < 0, self.node_cluster[member][k], -1)
        runs = []
        change = np.nonzero(np.diff(zone) != 0)[0] + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [len(zone)]])
        nearest = lambda c, xy: int(np.argmin(np.linalg.norm(self.approach_points[c] - xy, axis=1)))  # noqa: E731
        for a, b in zip(starts, ends):
            c = int(zone[a])
            if c >= 0:
                runs.append((c, a * step, (b - 1) * step, nearest(c, lane_xy[a]) if a > 0 else -1,
                             nearest(c, lane_xy[b - 1]) if b < len(zone) else -1))
        return runs


def build_junctions(net: StreetNetwork, clearance: ColumnLookup) -> Junctions:
    """Junction clusters, zone radii and approach entry points of a street graph (module docstring)."""
    n_nodes = len(net.nodes)
    degree = np.bincount(np.asarray(net.edge_nodes, dtype=np.int64).ravel(), minlength=n_nodes)
    radius = np.zeros(n_nodes)
    for node in range(n_nodes):
        widths = []
        for e, d in net.outgoing(node):
            p = net.points(e, d)
            along = arc_length(p)
            sel = p[(along >= 8.0) & (along <= 25.0)]
            if len(sel) == 0:
                sel = p[len(p) // 2:len(p) // 2 + 1]
            widths.append(float(np.median(clearance(sel, outside=0.0))))
        radius[node] = float(np.clip(max(widths, default=0.0), 5.0, 16.0)) + 1.0
    candidates = np.nonzero(degree >= 3)[0]
    pairs = [(int(a), int(b)) for i, a in enumerate(candidates) for b in candidates[i + 1:]
             if np.linalg.norm(net.nodes[a] - net.nodes[b]) < radius[a] + radius[b]]
    a, b = np.array(pairs, dtype=np.int64).reshape(-1, 2).T
    _, root = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(n_nodes, n_nodes)), directed=False)
    cluster_of = np.full(n_nodes, -1, dtype=np.int64)
    points: list[np.ndarray] = []
    groups: list[np.ndarray] = []
    for r in sorted({int(root[c]) for c in candidates}):
        members = [int(c) for c in candidates if root[c] == r]
        inside = set(members)
        pts, inward = [], []
        centre = net.nodes[members].mean(axis=0)
        for node in members:
            for e, d in net.outgoing(node):
                if net.end_node(e, d) in inside:
                    continue  # an edge inside the junction
                p = net.points(e, d)
                dist = np.min(np.linalg.norm(p[:, None, :] - net.nodes[members][None], axis=2)
                              - radius[members][None], axis=1)
                out = np.nonzero(dist >= 0)[0]
                pts.append(p[out[0]] if len(out) else p[-1])
                # the approach street's direction towards the junction, from 15 m out
                far = p[min(len(p) - 1, int(np.searchsorted(arc_length(p), 15.0)))]
                inward.append((centre - far) / max(float(np.linalg.norm(centre - far)), 1e-9))
        if len(pts) < 3:
            continue  # a bend, not a junction
        cluster_of[members] = len(points)
        points.append(np.array(pts, dtype=np.float64).reshape(-1, 2))
        groups.append(_opposite_pairs(np.array(inward)))
    return Junctions(cluster_of, radius, tuple(points), tuple(groups))


def _opposite_pairs(inward: np.ndarray, min_angle: float = np.deg2rad(140.0)) -> np.ndarray:
    """(k,) signal group per approach: approaches from opposite sides (> 140 deg apart) share a group."""
    k = len(inward)
    cos = inward @ inward.T
    group = np.full(k, -1, dtype=np.int64)
    pairs = sorted((float(cos[a, b]), a, b) for a in range(k) for b in range(a + 1, k) if cos[a, b] < np.cos(min_angle))
    n = 0
    for _, a, b in pairs:
        if group[a] < 0 and group[b] < 0:
            group[a] = group[b] = n
            n += 1
    for a in range(k):
        if group[a] < 0:
            group[a] = n
            n += 1
    return group


class Signals:
    """The actuated signals of all junctions: one group of approaches (opposite streets) green at a time."""

    def __init__(self, junctions: Junctions, spec: TrafficSpec, rng: np.random.Generator) -> None:
        self.spec = spec
        n = junctions.n
        width = max((len(g) for g in junctions.approach_groups), default=1)
        self.group_of = np.full((max(n, 1), width), -1, dtype=np.int64)  # (J, approaches) signal group
        for j, g in enumerate(junctions.approach_groups):
            self.group_of[j, :len(g)] = g
        self.n_groups = np.array([int(g.max()) + 1 for g in junctions.approach_groups], dtype=np.int64)
        self.state = np.full(n, GREEN, dtype=np.int64)
        self.green = np.array([rng.integers(k) for k in self.n_groups], dtype=np.int64)
        self.timer = rng.uniform(0.0, spec.signal_max_green, n) if n else np.zeros(0)

    def step(self, dt: float, waiting: np.ndarray, occupied: np.ndarray) -> None:
        """Advance every signal by dt. waiting: (J, approaches) bool, someone waits at that approach;
        occupied: (J,) bool, a vehicle is inside the box."""
        spec = self.spec
        self.timer += dt
        for j in range(len(self.state)):
            k, a, t = int(self.n_groups[j]), int(self.green[j]), self.timer[j]
            calls = np.zeros(k, dtype=bool)
            calls[self.group_of[j][waiting[j]]] = True
            if self.state[j] == GREEN:
                others = calls.any() and not (calls.sum() == 1 and calls[a])
                if others and t >= spec.signal_min_green and (not calls[a] or t >= spec.signal_max_green):
                    self.state[j], self.timer[j] = AMBER, 0.0
            elif self.state[j] == AMBER:
                if t >= spec.signal_amber:
                    self.state[j], self.timer[j] = ALL_RED, 0.0
            elif t >= spec.signal_all_red and not occupied[j]:
                order = (a + 1 + np.arange(k)) % k
                want = order[calls[order]]
                if len(want):
                    self.state[j], self.green[j], self.timer[j] = GREEN, int(want[0]), 0.0

    def may_enter(self, junction: np.ndarray, approach: np.ndarray, gap: np.ndarray, v: np.ndarray,
                  giving_way: np.ndarray) -> np.ndarray:
        """(A,) bool: vehicles `gap` m before the stop line of (junction, approach) at speed v may go on:
        green for them, or amber and too close to stop at `signal_stop_decel`, or amber and waiting at the
        line to give way (the oncoming stream stops at amber: turning vehicles clear then)."""
        if len(self.state) == 0:
            return np.zeros(len(junction), dtype=bool)
        j = np.maximum(junction, 0)
        mine = (junction >= 0) & (approach >= 0) & (self.green[j] == self.group_of[j, np.maximum(approach, 0)])
        cannot_stop = gap < v ** 2 / (2 * self.spec.signal_stop_decel)
        return mine & ((self.state[j] == GREEN) | ((self.state[j] == AMBER) & (cannot_stop | giving_way)))


class Movements:
    """The paths through each junction (approach -> exit), learnt from the first vehicle lane that takes one,
    and which of them conflict: the footprints of two vehicles swept along them come closer than `margin`
    (a right turn across the oncoming lane, two streams merging into one exit, a bus's tail swinging over
    the next lane).

    Within a green group the movement turning less to the right has the right of way (left turns and
    straight on before right turns, as in Japan; ties: the lower approach index)."""

    def __init__(self, margin: float = 0.4, gap_time: float = 4.0, cell: float = 0.5) -> None:
        self.margin, self.gap_time, self.cell = margin, gap_time, cell
        self.paths: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray, float]] = {}
        self.conflicts: dict[tuple, float | None] = {}

    def learn(self, key: tuple[int, int, int], xy: np.ndarray, yaw: np.ndarray) -> None:
        if key not in self.paths and len(xy) >= 2:
            self.paths[key] = (xy.copy(), yaw.copy(), float(yaw[-1] - yaw[0]))

    def turn(self, key: tuple[int, int, int]) -> float:
        return self.paths[key][2]

    def _swept(self, key: tuple[int, int, int], size: tuple[float, float], step: float) -> tuple[np.ndarray, np.ndarray]:
        """Grid cells touched by a vehicle of `size` (length, width) along a path, and the path arc length."""
        xy, yaw, _ = self.paths[key]
        every = max(1, int(round(1.0 / step)))
        s = np.arange(0, len(xy), every) * step
        pts = footprint_samples(xy[::every], np.broadcast_to([size[0], size[1], 1.0], (len(s), 3)), yaw[::every],
                                spacing=self.cell, grow=self.margin / 2)
        ij = np.floor(pts / self.cell).astype(np.int64)
        return ij[..., 0] * 1_000_003 + ij[..., 1], np.broadcast_to(s[:, None], ij.shape[:2])

    def conflict(self, m1: tuple[int, int, int], size1: tuple[float, float], m2: tuple[int, int, int],
                 size2: tuple[float, float], step: float) -> float | None:
        """None when vehicles of these sizes on m1 and m2 can pass each other; else the arc length along m2
        (from the box entry) after which the m2 vehicle's body is clear of everything m1 sweeps."""
        key = (m1, size1, m2, size2)
        if key not in self.conflicts:
            cells1, _ = self._swept(m1, size1, step)
            cells2, s2 = self._swept(m2, size2, step)
            shared = np.isin(cells2, cells1)
            self.conflicts[key] = float(s2[shared].max()) if shared.any() else None
        return self.conflicts[key]

    def has_way(self, m1: tuple[int, int, int], m2: tuple[int, int, int]) -> bool:
        """m1 has the right of way over m2 (a strict order: no two movements wait for each other)."""
        t1, t2 = self.turn(m1), self.turn(m2)
        return t1 > t2 + 0.2 or (abs(t1 - t2) <= 0.2 and m1[1] < m2[1])
