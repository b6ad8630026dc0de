"""Where agents may be: passable columns, clearances and the street centreline graph of a voxel world.

Everything is derived once per world (kept in the world's `derived` dict, like the trajectory maps):

- `passable_columns(world, clear_height)`: (nx, ny) bool, the column holds nothing but ground-like voxels
  (free, terrain, road, sidewalk) from the level of the terrain up to `clear_height` above it. Buildings,
  trees, furniture, water, railway and bridge piers block a column; a bridge deck higher than the clear
  height does not (vehicles pass under it).
- `clearance`: metres from a passable column's centre to the edge of the nearest blocked column
  (Euclidean distance transform, minus half a column).
- `StreetNetwork`: the centrelines of the vehicle street space as a graph. The street mask (vehicle-
  passable columns; where the world has road surfaces, only road columns) is reduced to 2 m cells and
  thinned to a one-cell skeleton (Zhang-Suen), junctions are the skeleton cells with other than two
  neighbours, edges are the chains between them; dead-end spurs shorter than `spur_length` are pruned,
  and edges where the street is narrower than `min_street_half_width` (centre to obstacle) are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import distance_transform_edt
from scipy.ndimage import label as cc_label

from ..labels import FREE, ROAD, SIDEWALK, TERRAIN
from ..trajectories.maps import block_reduce, cached
from .specs import TrafficSpec

GROUND_LIKE: tuple[int, ...] = (FREE, TERRAIN, ROAD, SIDEWALK)
_LEVEL_EPS = 1e-3


def _ground_levels(world: Any) -> np.ndarray:
    dz = float(world.voxel_size[2])
    nz = world.objects.shape[2]
    k = np.floor((np.asarray(world.ground, np.float64) - float(world.z0)) / dz + _LEVEL_EPS).astype(np.int64)
    return np.clip(k, 0, nz - 1)


def column_labels_at(world: Any, k: np.ndarray) -> np.ndarray:
    """(nx, ny) labels of level k[i, j] of every column (k clipped into the world; above it: free)."""
    nx, ny, nz = world.objects.shape
    flat = world.objects.reshape(nx * ny, nz)
    kk = np.clip(k, 0, nz - 1).ravel()
    obj = flat[np.arange(nx * ny), kk].reshape(nx, ny)
    lab = np.asarray(world.object_label)[obj]
    return np.where(k < nz, lab, FREE)


def passable_columns(world: Any, clear_height: float) -> np.ndarray:
    """(nx, ny) bool: only ground-like voxels from the terrain level up to clear_height above the terrain."""

    def build() -> np.ndarray:
        ok_label = np.zeros(256, dtype=bool)
        ok_label[list(GROUND_LIKE)] = True
        kg = _ground_levels(world)
        n_up = int(np.ceil(clear_height / float(world.voxel_size[2])))
        ok = np.ones(kg.shape, dtype=bool)
        for r in range(0, n_up + 1):
            ok &= ok_label[column_labels_at(world, kg + r)]
        return ok

    return cached(world, ("agents.passable", float(clear_height)), build)


def road_columns(world: Any) -> np.ndarray:
    """(nx, ny) bool: the terrain level or the one above it holds a road voxel."""

    def build() -> np.ndarray:
        kg = _ground_levels(world)
        return (column_labels_at(world, kg) == ROAD) | (column_labels_at(world, kg + 1) == ROAD)

    return cached(world, ("agents.road",), build)


def clearance_map(world: Any, clear_height: float) -> np.ndarray:
    """(nx, ny) metres from each passable column to the nearest blocked column's edge (0 where blocked)."""

    def build() -> np.ndarray:
        free = passable_columns(world, clear_height)
        dx = float(world.voxel_size[0])
        if free.all():
            return np.full(free.shape, np.inf, dtype=np.float32)
        d = distance_transform_edt(free) * dx - dx / 2
        return np.where(free, np.maximum(d, 0.0), 0.0).astype(np.float32)

    return cached(world, ("agents.clearance", float(clear_height)), build)


@dataclass(frozen=True)
class ColumnLookup:
    """World xy -> column values of an (nx, ny) map (outside the world / region: `outside`)."""

    x0: float
    y0: float
    dx: float
    dy: float
    values: np.ndarray

    def __call__(self, xy: np.ndarray, outside: Any = False) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64)
        i = np.floor((xy[..., 0] - self.x0) / self.dx).astype(np.int64)
        j = np.floor((xy[..., 1] - self.y0) / self.dy).astype(np.int64)
        nx, ny = self.values.shape
        inside = (i >= 0) & (i < nx) & (j >= 0) & (j < ny)
        v = self.values[np.clip(i, 0, nx - 1), np.clip(j, 0, ny - 1)]
        return np.where(inside, v, outside)


def lookup(world: Any, values: np.ndarray) -> ColumnLookup:
    return ColumnLookup(float(world.x0), float(world.y0), float(world.voxel_size[0]), float(world.voxel_size[1]),
                        values)


def region_mask(world: Any, region: tuple[float, float, float, float] | None) -> np.ndarray:
    """(nx, ny) bool: column centres inside the region (the whole world when None)."""
    nx, ny = world.objects.shape[:2]
    if region is None:
        return np.ones((nx, ny), dtype=bool)
    xmin, ymin, xmax, ymax = region
    xs = float(world.x0) + (np.arange(nx) + 0.5) * float(world.voxel_size[0])
    ys = float(world.y0) + (np.arange(ny) + 0.5) * float(world.voxel_size[1])
    return ((xs >= xmin) & (xs < xmax))[:, None] & ((ys >= ymin) & (ys < ymax))[None, :]


# ------------------------------------------------------------------------------------------ skeleton

def _neighbours(img: np.ndarray) -> list[np.ndarray]:
    """P2..P9 (N, NE, E, SE, S, SW, W, NW with i = row) of every pixel of a zero-padded bool image."""
    p = np.pad(img, 1)
    h, w = img.shape
    sl = lambda di, dj: p[1 + di:1 + di + h, 1 + dj:1 + dj + w]  # noqa: E731
    return [sl(-1, 0), sl(-1, 1), sl(0, 1), sl(1, 1), sl(1, 0), sl(1, -1), sl(0, -1), sl(-1, -1)]


def thin(mask: np.ndarray, max_iter: int = 500) -> np.ndarray:
    """Zhang-Suen thinning of a bool image to a one-pixel-wide 8-connected skeleton."""
    img = np.asarray(mask, dtype=bool).copy()
    for _ in range(max_iter):
        changed = False
        for step in (0, 1):
            n = _neighbours(img)
            b = sum(x.astype(np.int8) for x in n)
            a = sum((~n[i] & n[(i + 1) % 8]).astype(np.int8) for i in range(8))
            p2, _, p4, _, p6, _, p8, _ = n
            if step == 0:
                c = ~(p2 & p4 & p6) & ~(p4 & p6 & p8)
            else:
                c = ~(p2 & p4 & p8) & ~(p2 & p6 & p8)
            kill = img & (b >= 2) & (b <= 6) & (a == 1) & c
            if kill.any():
                img &= ~kill
                changed = True
        if not changed:
            break
    return img


_OFFSETS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


@dataclass(frozen=True)
class StreetNetwork:
    """Street centreline graph: node positions, edges as polylines, each edge's clearance."""

    nodes: np.ndarray  # (N, 2) world xy
    edge_nodes: np.ndarray  # (E, 2) int node ids (start, end)
    edge_points: tuple[np.ndarray, ...]  # (E,) polylines (n_e, 2) world xy, start node -> end node
    edge_clearance: np.ndarray  # (E,) min street half width along the edge (m)
    edge_length: np.ndarray  # (E,)

    @property
    def n_edges(self) -> int:
        return len(self.edge_nodes)

    def outgoing(self, node: int) -> list[tuple[int, int]]:
        """(edge, direction) pairs leaving a node (direction +1: edge order, -1: reversed)."""
        out = [(int(e), 1) for e in np.nonzero(self.edge_nodes[:, 0] == node)[0]]
        out += [(int(e), -1) for e in np.nonzero(self.edge_nodes[:, 1] == node)[0]]
        return sorted(out)

    def end_node(self, edge: int, direction: int) -> int:
        return int(self.edge_nodes[edge, 1 if direction > 0 else 0])

    def points(self, edge: int, direction: int) -> np.ndarray:
        p = self.edge_points[edge]
        return p if direction > 0 else p[::-1]


def _trace_edges(skel: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, list[tuple[int, int]]]]]:
    """Junction clusters and pixel chains between them of a one-pixel skeleton."""
    n = _neighbours(skel)
    deg = sum(x.astype(np.int8) for x in n) * skel
    is_node = skel & (deg != 2)
    node_lab, n_nodes = cc_label(is_node, structure=np.ones((3, 3), dtype=bool))
    h, w = skel.shape
    visited = np.zeros_like(skel)
    edges: list[tuple[int, int, list[tuple[int, int]]]] = []
    seen_direct: set[tuple[int, int]] = set()

    def nbrs(i: int, j: int) -> list[tuple[int, int]]:
        return [(i + di, j + dj) for di, dj in _OFFSETS
                if 0 <= i + di < h and 0 <= j + dj < w and skel[i + di, j + dj]]

    for i, j in zip(*np.nonzero(is_node)):
        a = int(node_lab[i, j])
        for q in nbrs(i, j):
            if is_node[q]:
                b = int(node_lab[q])
                if b != a and (min(a, b), max(a, b)) not in seen_direct:
                    seen_direct.add((min(a, b), max(a, b)))
                    edges.append((a, b, [(i, j), q]))
                continue
            if visited[q]:
                continue
            chain = [(int(i), int(j)), q]
            visited[q] = True
            prev, cur = (i, j), q
            end = None
            while True:
                nxt = [r for r in nbrs(*cur) if r != prev and r not in chain[-3:]]
                nodes_next = [r for r in nxt if is_node[r] and int(node_lab[r]) != 0]
                if nodes_next and (len(chain) > 2 or int(node_lab[nodes_next[0]]) != a):
                    end = nodes_next[0]
                    chain.append(end)
                    break
                free_next = [r for r in nxt if not is_node[r] and not visited[r]]
                if not free_next:
                    break
                prev, cur = cur, free_next[0]
                visited[cur] = True
                chain.append(cur)
            if end is not None:
                edges.append((a, int(node_lab[end]), chain))
    return node_lab, edges


def build_network(world: Any, spec: TrafficSpec, region: tuple[float, float, float, float] | None) -> StreetNetwork:
    """The vehicle street centreline graph (cached per world, spec and region)."""
    key = ("agents.network", spec.vehicle_clear_height, spec.network_cell, spec.min_street_half_width,
           spec.spur_length, None if region is None else tuple(float(r) for r in region))
    return cached(world, key, lambda: _build_network(world, spec, region))


def _build_network(world: Any, spec: TrafficSpec, region: tuple[float, float, float, float] | None) -> StreetNetwork:
    dx = float(world.voxel_size[0])
    f = max(1, int(round(spec.network_cell / dx)))
    cell = f * dx
    passable = passable_columns(world, spec.vehicle_clear_height) & region_mask(world, region)
    street = passable
    roads = road_columns(world) & passable
    if roads.sum() > 0.05 * passable.sum():
        street = roads
    coarse = block_reduce(street, f, np.mean) >= 0.5
    skel = thin(coarse)
    node_lab, raw_edges = _trace_edges(skel)
    n_nodes = int(node_lab.max())
    centre = lambda ij: (float(world.x0) + (ij[0] + 0.5) * cell, float(world.y0) + (ij[1] + 0.5) * cell)  # noqa
    node_xy = np.zeros((n_nodes + 1, 2))
    for lab in range(1, n_nodes + 1):
        ii, jj = np.nonzero(node_lab == lab) if n_nodes < 64 else (None, None)
        if ii is None:
            break
        node_xy[lab] = np.mean([centre((a, b)) for a, b in zip(ii, jj)], axis=0)
    if n_nodes >= 64:  # vectorised centroids
        lab = node_lab[node_lab > 0]
        ii, jj = np.nonzero(node_lab > 0)
        cnt = np.bincount(lab, minlength=n_nodes + 1).astype(np.float64)
        cnt[cnt == 0] = 1
        node_xy[:, 0] = float(world.x0) + (np.bincount(lab, weights=ii + 0.5, minlength=n_nodes + 1) / cnt) * cell
        node_xy[:, 1] = float(world.y0) + (np.bincount(lab, weights=jj + 0.5, minlength=n_nodes + 1) / cnt) * cell
    clear = lookup(world, clearance_map(world, spec.vehicle_clear_height))
    edges = []
    for a, b, chain in raw_edges:
        pts = np.array([centre(p) for p in chain[1:-1]]).reshape(-1, 2)
        pts = np.concatenate([node_xy[a][None], pts, node_xy[b][None]])
        length = float(np.sum(np.linalg.norm(np.diff(pts, axis=0), axis=1)))
        if length <= 0:
            continue
        inner = pts[1:-1] if len(pts) > 2 else pts
        edges.append([a, b, pts, float(np.min(clear(inner, outside=0.0))), length])
    edges = _prune(edges, spec)
    edges = [e for e in edges if e[3] >= spec.min_street_half_width]
    used = sorted({e[0] for e in edges} | {e[1] for e in edges})
    remap = {n: k for k, n in enumerate(used)}
    return StreetNetwork(
        nodes=node_xy[used].reshape(-1, 2) if used else np.zeros((0, 2)),
        edge_nodes=np.array([[remap[e[0]], remap[e[1]]] for e in edges], dtype=np.int64).reshape(-1, 2),
        edge_points=tuple(e[2] for e in edges),
        edge_clearance=np.array([e[3] for e in edges], dtype=np.float64),
        edge_length=np.array([e[4] for e in edges], dtype=np.float64),
    )


def _prune(edges: list, spec: TrafficSpec, rounds: int = 3) -> list:
    """Drop self-loops and short dead-end spurs (repeated: pruning exposes new spurs)."""
    edges = [e for e in edges if e[0] != e[1]]
    for _ in range(rounds):
        deg: dict[int, int] = {}
        for e in edges:
            deg[e[0]] = deg.get(e[0], 0) + 1
            deg[e[1]] = deg.get(e[1], 0) + 1
        keep = [e for e in edges if not ((deg[e[0]] == 1 or deg[e[1]] == 1) and e[4] < spec.spur_length
                                         and not (deg[e[0]] == 1 and deg[e[1]] == 1))]
        if len(keep) == len(edges):
            break
        edges = keep
    return edges


def vehicle_corridor(world: Any, spec: TrafficSpec, region: tuple[float, float, float, float] | None) -> np.ndarray:
    """(nx, ny) bool: columns a vehicle lane can sweep (every lane of every edge, and every turn through
    every junction, built the way vehicles build them, grown by a bus half width and the body margin).
    Pedestrians walk outside it except when crossing."""

    def build() -> np.ndarray:
        from .paths import lane_path, resample

        net = build_network(world, spec, region)
        nx, ny = world.objects.shape[:2]
        mark = np.zeros((nx, ny), dtype=bool)
        dx, dy = float(world.voxel_size[0]), float(world.voxel_size[1])
        step = spec.path_step
        pieces = []
        for node in range(len(net.nodes)):
            out = net.outgoing(node)
            for e_in, d_in in out:  # arriving over edge e_in means travelling it in direction -d_in
                tail = resample(net.points(e_in, -d_in), step)[-int(30 / step):]
                for e_out, d_out in out:
                    head = resample(net.points(e_out, d_out), step)[1:int(30 / step)]
                    pieces.append(np.concatenate([tail, head]))
        for e in range(net.n_edges):
            for d in (1, -1):
                pieces.append(resample(net.points(e, d), step))
        for centre in pieces:
            if len(centre) < 2:
                continue
            p = lane_path(centre, spec.lane_offset, spec.path_smoothing, step).xy
            i = np.floor((p[:, 0] - float(world.x0)) / dx).astype(np.int64)
            j = np.floor((p[:, 1] - float(world.y0)) / dy).astype(np.int64)
            ok = (i >= 0) & (i < nx) & (j >= 0) & (j < ny)
            mark[i[ok], j[ok]] = True
        if not mark.any():
            return mark
        half = 1.3 + spec.body_margin + 0.5
        return distance_transform_edt(~mark) * dx <= half

    key = ("agents.corridor", spec.vehicle_clear_height, spec.network_cell, spec.min_street_half_width,
           spec.spur_length, spec.lane_offset, spec.body_margin, spec.path_smoothing, spec.path_step,
           None if region is None else tuple(map(float, region)))
    return cached(world, key, build)
