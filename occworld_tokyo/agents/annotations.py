"""Per-frame annotations: nuScenes-like boxes of the agents visible in a frame's ego grid.

Every box is in the ego frame of the grid (x forward, y left, z up with z = 0 at the frame's ground_z,
so `GridSpec.to_index(center)` is the voxel of the centre). A box is listed when at least one voxel of
the grid belongs to it (voxelize.py rule). Fields:

    id          instance id (the value in the frame's `instances` grid)
    class       label name ("vehicle", "pedestrian", "drone"); label: its storage id
    kind        subclass ("car", "van", "truck", "bus", "pedestrian", "drone")
    center      [x, y, z] m, box centre, ego frame
    size        [length, width, height] m (length along the heading)
    yaw         heading in the ego frame, rad in [-pi, pi); rotation: the same as a quaternion [w, x, y, z]
    velocity    [vx, vy, vz] m/s: the agent's world velocity expressed in ego axes (not relative to the ego)
    num_voxels  voxels of the frame's `instances` grid holding this id (only when the grid is given)
"""

from __future__ import annotations

import numpy as np

from ..grid import EgoFrame, GridSpec
from .states import AgentStates
from .voxelize import box_voxel_count, near_grid, to_ego


def annotations(states: AgentStates, frame: EgoFrame, grid: GridSpec, *,
                occupancy_instances: np.ndarray | None = None) -> list[dict]:
    """The visible agents' boxes of one frame, JSON-ready (module docstring), sorted by id."""
    if len(states) == 0:
        return []
    centers, yaws = to_ego(states, frame)
    vel = frame.rotate_to_ego(states.velocities).reshape(-1, 3)
    names, kinds = states.class_names(), states.kind_names()
    counts = {}
    if occupancy_instances is not None:
        ids, cnt = np.unique(occupancy_instances[occupancy_instances >= int(states.ids.min())], return_counts=True)
        counts = dict(zip(ids.tolist(), cnt.tolist()))
    out = []
    for a in np.nonzero(near_grid(centers, states.sizes, grid))[0]:
        if box_voxel_count(centers[a], states.sizes[a], float(yaws[a]), grid) == 0:
            continue
        y = float(yaws[a])
        box = {
            "id": int(states.ids[a]),
            "class": names[a],
            "label": int(states.labels[a]),
            "kind": kinds[a],
            "center": [float(v) for v in centers[a]],
            "size": [float(v) for v in states.sizes[a]],
            "yaw": y,
            "rotation": [float(np.cos(y / 2)), 0.0, 0.0, float(np.sin(y / 2))],
            "velocity": [float(v) for v in vel[a]],
        }
        if occupancy_instances is not None:
            box["num_voxels"] = int(counts.get(int(states.ids[a]), 0))
        out.append(box)
    return sorted(out, key=lambda b: b["id"])
