"""The mesh the sensors see: the city mesh plus the voxel world's estimated ground where the data has none.

PLATEAU building files (e.g. the western-Tokyo bldg tile) carry no terrain: without it lidar rays and
camera rays would fall through the street into the void while the occupancy grid holds a ground layer.
`sensor_mesh` adds the voxel world's ground (`VoxelWorld.ground`, the same surface the occupancy uses) as a
TERRAIN heightfield object with instance id 0 (the id the voxel world gives its synthetic ground), so the
sensors and the occupancy agree on where the ground is. Meshes that already contain TERRAIN objects
(a dem was read) are returned unchanged.
"""

from __future__ import annotations

import numpy as np

from occworld_tokyo import labels as L
from occworld_tokyo.citymodel.mesh import CityMesh, Fill


def heightfield(xs: np.ndarray, ys: np.ndarray, z: np.ndarray) -> np.ndarray:
    """(2 (nx-1)(ny-1), 3, 3) float32 triangles over the lattice xs x ys with heights z (nx, ny)."""
    gx, gy = np.meshgrid(np.asarray(xs, np.float64), np.asarray(ys, np.float64), indexing="ij")
    p = np.stack([gx, gy, np.asarray(z, np.float64)], axis=-1)
    a, b, c, d = p[:-1, :-1], p[1:, :-1], p[1:, 1:], p[:-1, 1:]
    return np.concatenate([np.stack([a, b, c], axis=-2).reshape(-1, 3, 3),
                           np.stack([a, c, d], axis=-2).reshape(-1, 3, 3)]).astype(np.float32)


def ground_samples(world, cell: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lattice (xs, ys) every ~`cell` m over the world's extent and the world's ground height there."""
    x0, y0, x1, y1 = world.bounds_xy
    xs = np.linspace(x0, x1, max(int(np.ceil((x1 - x0) / cell)), 1) + 1)
    ys = np.linspace(y0, y1, max(int(np.ceil((y1 - y0) / cell)), 1) + 1)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    return xs, ys, world.ground_height(gx, gy)


def sensor_mesh(mesh: CityMesh, world=None, cell: float = 4.0) -> CityMesh:
    """`mesh` plus a TERRAIN heightfield of `world.ground` (every `cell` m) when the mesh has no terrain."""
    if world is None or np.any(mesh.object_label == L.TERRAIN):
        return mesh
    xs, ys, z = ground_samples(world, cell)
    tris = heightfield(xs, ys, z)
    ground = CityMesh(triangles=tris, tri_object=np.zeros(len(tris), np.int32), object_label=[L.TERRAIN],
                      object_instance=[0], object_fill=[Fill.TERRAIN], object_gml_id=["synthetic_ground"])
    out = CityMesh.concatenate([mesh, ground])
    out.origin, out.source_files, out.skipped = mesh.origin, list(mesh.source_files), dict(mesh.skipped)
    return out
