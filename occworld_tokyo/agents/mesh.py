"""agent_mesh: agent boxes as a CityMesh (12 outward-facing triangles per box) for lidar/camera ray casting.

Object labels and instance ids are the agents', fill SOLID, gml ids "agent:<id>", so the mesh can be
concatenated with the city mesh (`CityMesh.concatenate([city, agent_mesh(states)])`).
"""

from __future__ import annotations

import numpy as np

from ..citymodel.mesh import CityMesh, Fill
from .states import AgentStates

# corners: bit 0 -> +x (front), bit 1 -> +y (left), bit 2 -> +z (top), in box units of +-0.5
_UNIT = np.array([[(b & 1) - 0.5, ((b >> 1) & 1) - 0.5, ((b >> 2) & 1) - 0.5] for b in range(8)])
# two triangles per face, counter-clockwise seen from outside
_FACES = np.array([
    [0, 2, 3], [0, 3, 1],  # bottom (-z)
    [4, 5, 7], [4, 7, 6],  # top (+z)
    [0, 1, 5], [0, 5, 4],  # -y
    [2, 6, 7], [2, 7, 3],  # +y
    [0, 4, 6], [0, 6, 2],  # -x
    [1, 3, 7], [1, 7, 5],  # +x
])


def box_corners(states: AgentStates) -> np.ndarray:
    """(K, 8, 3) world corners of every box."""
    local = _UNIT[None] * states.sizes[:, None, :]
    c, s = np.cos(states.yaws)[:, None], np.sin(states.yaws)[:, None]
    x = c * local[..., 0] - s * local[..., 1]
    y = s * local[..., 0] + c * local[..., 1]
    return states.centers[:, None, :] + np.stack([x, y, local[..., 2]], -1)


def agent_mesh(states: AgentStates) -> CityMesh:
    """The boxes as one CityMesh (empty when there are no agents)."""
    k = len(states)
    tris = box_corners(states)[:, _FACES].reshape(-1, 3, 3) if k else np.zeros((0, 3, 3))
    return CityMesh(
        triangles=tris,
        tri_object=np.repeat(np.arange(k, dtype=np.int32), len(_FACES)),
        object_label=states.labels.copy(),
        object_instance=states.ids.copy(),
        object_fill=np.full(k, Fill.SOLID, dtype=np.uint8),
        object_gml_id=[f"agent:{int(i)}" for i in states.ids],
    )
