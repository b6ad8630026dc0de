"""Planning metrics: L2 of predicted positions and collision of the predicted ego box with the ground truth.

Positions are cumulative positions of the agent at future steps in the *current* ego frame (x forward,
y left, metres), shape (B, T, 2) or (T, 2). 0-based step i is (i + 1) / rate_hz seconds ahead.

L2: `l2_1s`, `l2_2s`, `l2_3s` are the mean Euclidean errors *at* steps 1, 3, 5 (2 Hz); `l2_avg` is their
mean. Because published tables (ST-P3 style, used by OccWorld's planning table) often average the error over
all steps up to the horizon, `l2_upto_1s` etc. report that variant too; say which one you compare with.

Collision (docs/metrics.md, "Collision"): at every future step t the predicted ego box (length along its
heading, width, height) is placed in the ground-truth occupancy of step t. That grid lives in the future frame
t, whose pose relative to the current ego frame is (gt_xy[t], gt_yaw[t]) with its ground `gt_ground_dz[t]`
metres above the current frame's ground; a point p in the current ego frame is therefore at
R(-gt_yaw[t]) (p_xy - gt_xy[t]) and z - gt_ground_dz[t] in grid t. The box collides when any voxel that
overlaps it with positive volume carries a label in `collision_classes` (default: buildings, vegetation,
city furniture, other, and the moving classes vehicle / pedestrian / drone; the surfaces the agent stands on,
road, sidewalk, terrain, water, railway and bridge, are not obstacles). Box heading: `pred_yaw` if given,
else the direction of travel between consecutive predicted positions (0 = straight ahead at the start, kept
when the agent stands still). Box height: `agent_z` is the height of the box centre in the current ego frame
(above the current ground); by default the box rests on the ground under the agent at each step.
`gt_collision_rate` runs the same test on the ground-truth path: it should be ~0; if not, the box or the
collision classes do not fit the data.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..grid import DEFAULT_GRID, GridSpec
from ..labels import BUILDING, CITY_FURNITURE, DRONE, OTHER, PEDESTRIAN, VEGETATION, VEHICLE
from .occupancy_metrics import REPORT_SECONDS
from .arrays import to_numpy


OBSTACLE_CLASSES: tuple[int, ...] = (BUILDING, VEGETATION, CITY_FURNITURE, OTHER, VEHICLE, PEDESTRIAN, DRONE)
DEFAULT_AGENT_BOX: tuple[float, float, float] = (1.0, 0.8, 0.8)  # length, width, height (m); pass the real one


def path_headings(xy: np.ndarray, min_step: float = 1e-3) -> np.ndarray:
    """(B, T, 2) positions -> (B, T) heading of travel from the previous position (start at the origin)."""
    prev = np.concatenate([np.zeros_like(xy[:, :1]), xy[:, :-1]], axis=1)
    d = xy - prev
    yaw = np.zeros(xy.shape[:2])
    for b in range(xy.shape[0]):
        last = 0.0
        for t in range(xy.shape[1]):
            if np.hypot(d[b, t, 0], d[b, t, 1]) > min_step:
                last = float(np.arctan2(d[b, t, 1], d[b, t, 0]))
            yaw[b, t] = last
    return yaw


def current_to_future(p_xy: np.ndarray, z: float, yaw: float, frame_xy: np.ndarray, frame_yaw: float,
                      frame_dz: float) -> tuple[np.ndarray, float, float]:
    """A pose in the current ego frame -> the same pose in a future frame's ego grid (xy, z, yaw)."""
    c, s = np.cos(frame_yaw), np.sin(frame_yaw)
    d = np.asarray(p_xy, dtype=np.float64) - np.asarray(frame_xy, dtype=np.float64)
    return np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1]]), z - frame_dz, yaw - frame_yaw


def box_voxels(center_xy: np.ndarray, center_z: float, yaw: float, box: Sequence[float],
               grid: GridSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (i, j, k) of grid voxels overlapping an oriented box with positive volume (separating axes)."""
    length, width, height = (float(v) for v in box)
    hx, hy = grid.voxel_size[0] / 2, grid.voxel_size[1] / 2
    c, s = abs(np.cos(yaw)), abs(np.sin(yaw))
    ext_x = c * length / 2 + s * width / 2
    ext_y = s * length / 2 + c * width / 2
    nx, ny, nz = grid.shape
    i0 = max(int(np.floor((center_xy[0] - ext_x - grid.x_range[0]) / grid.voxel_size[0])), 0)
    i1 = min(int(np.floor((center_xy[0] + ext_x - grid.x_range[0]) / grid.voxel_size[0])), nx - 1)
    j0 = max(int(np.floor((center_xy[1] - ext_y - grid.y_range[0]) / grid.voxel_size[1])), 0)
    j1 = min(int(np.floor((center_xy[1] + ext_y - grid.y_range[0]) / grid.voxel_size[1])), ny - 1)
    z_lo, z_hi = center_z - height / 2, center_z + height / 2
    k = np.arange(nz)
    lvl_lo = grid.z_range[0] + k * grid.voxel_size[2]
    ks = k[(lvl_lo < z_hi) & (lvl_lo + grid.voxel_size[2] > z_lo)]
    empty = np.zeros(0, dtype=np.int64)
    if i0 > i1 or j0 > j1 or ks.size == 0:
        return empty, empty, empty
    ii, jj = np.meshgrid(np.arange(i0, i1 + 1), np.arange(j0, j1 + 1), indexing="ij")
    vx = grid.x_range[0] + (ii + 0.5) * grid.voxel_size[0] - center_xy[0]
    vy = grid.y_range[0] + (jj + 0.5) * grid.voxel_size[1] - center_xy[1]
    cy, sy = np.cos(yaw), np.sin(yaw)
    along = vx * cy + vy * sy
    across = -vx * sy + vy * cy
    voxel_on_u = hx * abs(cy) + hy * abs(sy)
    voxel_on_v = hx * abs(sy) + hy * abs(cy)
    hit = ((np.abs(vx) < hx + ext_x) & (np.abs(vy) < hy + ext_y)
           & (np.abs(along) < length / 2 + voxel_on_u) & (np.abs(across) < width / 2 + voxel_on_v))
    ci, cj = ii[hit], jj[hit]
    return (np.repeat(ci, ks.size), np.repeat(cj, ks.size), np.tile(ks, ci.size))


def box_collides(occ: np.ndarray, center_xy: np.ndarray, center_z: float, yaw: float, box: Sequence[float],
                 grid: GridSpec, obstacle_lut: np.ndarray) -> bool:
    i, j, k = box_voxels(center_xy, center_z, yaw, box, grid)
    if i.size == 0:
        return False
    return bool(obstacle_lut[occ[i, j, k]].any())


def _as_batch(a: np.ndarray | None, ndim_single: int) -> np.ndarray | None:
    if a is None:
        return None
    return a[None] if a.ndim == ndim_single else a


class PlanningMetrics:
    """Accumulates L2 and collision counts per future step over a dataset (see the module docstring)."""

    def __init__(self, n_steps: int = 6, rate_hz: float = 2.0, grid: GridSpec = DEFAULT_GRID,
                 agent_box: Sequence[float] = DEFAULT_AGENT_BOX,
                 collision_classes: Sequence[int] = OBSTACLE_CLASSES) -> None:
        self.n_steps = n_steps
        self.rate_hz = rate_hz
        self.grid = grid
        self.agent_box = tuple(float(v) for v in agent_box)
        self.collision_classes = tuple(int(c) for c in collision_classes)
        self.lut = np.zeros(256, dtype=bool)
        self.lut[list(self.collision_classes)] = True
        self.reset()

    def reset(self) -> None:
        self.l2_sum = np.zeros(self.n_steps)
        self.count = np.zeros(self.n_steps, dtype=np.int64)
        self.collisions = np.zeros(self.n_steps, dtype=np.int64)
        self.gt_collisions = np.zeros(self.n_steps, dtype=np.int64)
        self.coll_count = np.zeros(self.n_steps, dtype=np.int64)

    def update(self, pred_xy: Any, gt_xy: Any, gt_occ_future: Any = None, gt_yaw: Any = None,
               gt_ground_dz: Any = None, agent_z: Any = None, pred_yaw: Any = None) -> None:
        pred, gt = _as_batch(to_numpy(pred_xy).astype(np.float64), 2), _as_batch(to_numpy(gt_xy).astype(np.float64), 2)
        if pred.shape != gt.shape or pred.shape[-1] != 2:
            raise ValueError(f"pred_xy {pred.shape} and gt_xy {gt.shape} must both be (B, T, 2)")
        B, T = pred.shape[:2]
        if T > self.n_steps:
            raise ValueError(f"{T} steps given, metric built for n_steps={self.n_steps}")
        err = np.linalg.norm(pred - gt, axis=-1)
        self.l2_sum[:T] += err.sum(0)
        self.count[:T] += B
        if gt_occ_future is None:
            return
        occ = _as_batch(to_numpy(gt_occ_future), 4)
        if occ.shape[:2] != (B, T):
            raise ValueError(f"gt_occ_future {occ.shape} must be (B, T, X, Y, Z) matching the paths")
        g_yaw = path_headings(gt) if gt_yaw is None else np.broadcast_to(to_numpy(gt_yaw), (B, T)).astype(np.float64)
        dz = np.zeros((B, T)) if gt_ground_dz is None else np.broadcast_to(to_numpy(gt_ground_dz), (B, T)).astype(float)
        p_yaw = path_headings(pred) if pred_yaw is None else np.broadcast_to(to_numpy(pred_yaw), (B, T)).astype(float)
        if agent_z is None:
            z = dz + self.agent_box[2] / 2  # resting on the ground under the agent at every step
        else:
            az = to_numpy(agent_z).astype(np.float64)
            z = np.broadcast_to(az[:, None] if az.ndim == 1 else az, (B, T))
        for b in range(B):
            for t in range(T):
                fxy, fyaw, fdz = gt[b, t], g_yaw[b, t], dz[b, t]
                for path, yaw, counter in ((pred, p_yaw, self.collisions), (gt, g_yaw, self.gt_collisions)):
                    cxy, cz, cyaw = current_to_future(path[b, t], z[b, t], yaw[b, t], fxy, fyaw, fdz)
                    counter[t] += box_collides(occ[b, t], cxy, cz, cyaw, self.agent_box, self.grid, self.lut)
                self.coll_count[t] += 1

    def compute(self) -> dict:
        steps = [t for t in range(self.n_steps) if self.count[t] > 0]
        out: dict[str, Any] = {"steps": steps, "steps_s": [(t + 1) / self.rate_hz for t in steps],
                               "l2": [float(self.l2_sum[t] / self.count[t]) for t in steps],
                               "agent_box": list(self.agent_box), "collision_classes": list(self.collision_classes)}
        cs = [t for t in range(self.n_steps) if self.coll_count[t] > 0]
        if cs:
            out["collision"] = [float(self.collisions[t] / self.coll_count[t]) for t in cs]
            out["gt_collision"] = [float(self.gt_collisions[t] / self.coll_count[t]) for t in cs]
            out["collision_rate"] = float(self.collisions[cs].sum() / self.coll_count[cs].sum())
            out["gt_collision_rate"] = float(self.gt_collisions[cs].sum() / self.coll_count[cs].sum())
        l2_at, l2_upto, coll_at = [], [], []
        for sec in REPORT_SECONDS:
            t = int(round(sec * self.rate_hz)) - 1
            if abs(sec * self.rate_hz - round(sec * self.rate_hz)) > 1e-6 or t not in steps:
                continue
            tag = f"{sec:g}s"
            out[f"l2_{tag}"] = float(self.l2_sum[t] / self.count[t])
            out[f"l2_upto_{tag}"] = float(np.mean(self.l2_sum[: t + 1] / self.count[: t + 1]))
            l2_at.append(out[f"l2_{tag}"])
            l2_upto.append(out[f"l2_upto_{tag}"])
            if t in cs:
                out[f"collision_{tag}"] = float(self.collisions[t] / self.coll_count[t])
                coll_at.append(out[f"collision_{tag}"])
        if l2_at:
            out["l2_avg"] = float(np.mean(l2_at))
            out["l2_upto_avg"] = float(np.mean(l2_upto))
        if coll_at:
            out["collision_avg"] = float(np.mean(coll_at))
        return out


def planning_metrics(pred_xy: Any, gt_xy: Any, gt_occ_future: Any = None, grid: GridSpec = DEFAULT_GRID,
                     agent_box: Sequence[float] = DEFAULT_AGENT_BOX, gt_yaw: Any = None, gt_ground_dz: Any = None,
                     agent_z: Any = None, pred_yaw: Any = None, rate_hz: float = 2.0,
                     collision_classes: Sequence[int] = OBSTACLE_CLASSES) -> dict:
    """One-shot planning metrics of a batch (B, T, 2) / one path (T, 2); see `PlanningMetrics` to accumulate."""
    n_steps = to_numpy(pred_xy).shape[-2]
    m = PlanningMetrics(n_steps, rate_hz, grid, agent_box, collision_classes)
    m.update(pred_xy, gt_xy, gt_occ_future, gt_yaw, gt_ground_dz, agent_z, pred_yaw)
    return m.compute()
