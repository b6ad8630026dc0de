"""Voxel flow of the uniocc export, in UniOcc's convention (its README and uniocc_flow_gen.py; REFERENCE s10).

Frames: ego_t is our yaw-only ego grid frame of frame t (frames.py): x forward, y left, z up, metres, origin at
the agent's x, y and at the ground. A voxel (i, j, k) of the Occ3D slab stands for the point at its lower corner,

    p = (-40 + 0.4 i, -40 + 0.4 j, -1.0 + 0.4 k) m in ego_t,

as UniOcc's `OccFrameToEgoFrame` places voxel i at i * 0.4 - 40 m (its z is 0.4 k - 2.2 m; that changes nothing
here: every motion of ours, ego or agent, is a turn about z plus a translation, under which the x, y flow does not
depend on z and the z flow is the translation's z).

The flow of an occupied voxel from frame t to frame u (u = t + 1: forward, u = t - 1: backward) is where that
point is in ego_u minus where it is in ego_t, divided by the voxel size: in voxels, float32, 0 for free voxels.

- A static voxel (no annotated agent) is fixed in the world: p' = T_ut p, T_ut = inv(ego_u -> world) @ (ego_t ->
  world).
- A voxel of agent a (our `instances` say which), annotated in both frames, moves rigidly with it: p' = A_u
  inv(A_t) p with A = agent_to_ego (4x4, rotation included) of each frame, which is what UniOcc's generator
  computes from the annotated pose change.
- A voxel of an agent with no annotation in frame u (it left the grid's surroundings or the session ends) moves
  with the agent's annotated velocity (ego_t axes, m/s) for the frame interval, without rotation (none is known),
  and is then expressed in ego_u.
"""

from __future__ import annotations

import numpy as np

from occworld_tokyo.grid import OCC3D_GRID, GridSpec
from occworld_tokyo.rotations import invert_rigid


def voxel_points(idx: np.ndarray, grid: GridSpec = OCC3D_GRID) -> np.ndarray:
    """(N, 3) voxel indices -> (N, 3) the voxels' lower corners in the ego frame (m), UniOcc's convention."""
    return np.asarray(grid.lower, np.float64) + np.asarray(idx, np.float64) * np.asarray(grid.voxel_size, np.float64)


def _apply(T: np.ndarray, p: np.ndarray) -> np.ndarray:
    return p @ T[:3, :3].T + T[:3, 3]


def voxel_flow(occupied: np.ndarray, instances: np.ndarray, ego_t_to_world: np.ndarray, ego_u_to_world: np.ndarray,
               agents_t: dict[int, np.ndarray], agents_u: dict[int, np.ndarray],
               velocities_t: dict[int, np.ndarray], dt: float, grid: GridSpec = OCC3D_GRID) -> np.ndarray:
    """(X, Y, Z, 3) float32 flow in voxels from frame t's grid to frame u's (module docstring).

    occupied: (X, Y, Z) bool; instances: (X, Y, Z) instance ids; ego_*_to_world: 4x4; agents_t / agents_u:
    instance id -> agent_to_ego 4x4 in frame t / u; velocities_t: instance id -> velocity (3,) m/s in ego_t axes;
    dt: time from t to u (s, negative for the backward flow)."""
    occupied = np.asarray(occupied, dtype=bool)
    flow = np.zeros(occupied.shape + (3,), np.float32)
    idx = np.argwhere(occupied)
    if not len(idx):
        return flow
    p = voxel_points(idx, grid)
    T_ut = invert_rigid(np.asarray(ego_u_to_world, np.float64)) @ np.asarray(ego_t_to_world, np.float64)
    moved = _apply(T_ut, p)
    inst = np.asarray(instances)[tuple(idx.T)]
    for a in np.intersect1d(np.unique(inst), np.fromiter(agents_t, dtype=np.int64, count=len(agents_t))):
        sel = inst == a
        if int(a) in agents_u:
            M = np.asarray(agents_u[int(a)], np.float64) @ invert_rigid(np.asarray(agents_t[int(a)], np.float64))
            moved[sel] = _apply(M, p[sel])
        elif int(a) in velocities_t:
            moved[sel] = _apply(T_ut, p[sel] + np.asarray(velocities_t[int(a)], np.float64) * dt)
    flow[tuple(idx.T)] = ((moved - p) / np.asarray(grid.voxel_size, np.float64)).astype(np.float32)
    return flow
