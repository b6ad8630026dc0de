"""CityMesh: a whole city model as one triangle soup, with a semantic class and instance per object.

Every reader (CityGML, OBJ, the built-in sample district) produces a CityMesh; everything downstream
(voxel world, lidar, camera) consumes one. Coordinates are metres in a local frame:
x = east, y = north, z = up (height above the data's vertical datum, e.g. Tokyo Bay MSL for EPSG:6697).
`origin` says where (0, 0) of that frame is on the Earth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np


class Fill(IntEnum):
    """How the voxelizer turns an object's triangles into occupied voxels."""

    SOLID = 0  # closed volume: every column is filled between its lowest and highest surface hit
    SURFACE = 1  # open surface (road, water, furniture plane): one voxel at the surface
    TERRAIN = 2  # relief: filled from the bottom of the world up to the surface


@dataclass(frozen=True)
class GeoOrigin:
    """Where the local frame's (0, 0, 0) lies: geographic lat/lon (deg) and the CRS used to project."""

    lat: float
    lon: float
    height: float
    source_crs: str  # e.g. "EPSG:6697"
    projected_crs: str  # e.g. "EPSG:6677" or a proj string of a local tangent plane

    def to_dict(self) -> dict:
        return dict(lat=self.lat, lon=self.lon, height=self.height,
                    source_crs=self.source_crs, projected_crs=self.projected_crs)


@dataclass
class CityMesh:
    triangles: np.ndarray  # (T, 3, 3) float32 vertex positions, local metres
    tri_object: np.ndarray  # (T,) int32 index into the object arrays
    object_label: np.ndarray  # (O,) uint8 storage ids (occworld_tokyo.labels)
    object_instance: np.ndarray  # (O,) int32 instance ids, > 0, unique per object
    object_fill: np.ndarray  # (O,) uint8 Fill values
    object_gml_id: list[str]  # (O,) source ids (gml:id, or file:index for OBJ)
    origin: GeoOrigin | None = None
    source_files: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # feature type / reason -> count

    def __post_init__(self) -> None:
        self.triangles = np.ascontiguousarray(self.triangles, dtype=np.float32).reshape(-1, 3, 3)
        self.tri_object = np.ascontiguousarray(self.tri_object, dtype=np.int32)
        self.object_label = np.asarray(self.object_label, dtype=np.uint8)
        self.object_instance = np.asarray(self.object_instance, dtype=np.int32)
        self.object_fill = np.asarray(self.object_fill, dtype=np.uint8)
        n_obj = len(self.object_label)
        if len(self.tri_object) != len(self.triangles):
            raise ValueError("tri_object must have one entry per triangle")
        if not (len(self.object_instance) == len(self.object_fill) == len(self.object_gml_id) == n_obj):
            raise ValueError("object arrays must all have one entry per object")
        if len(self.tri_object) and (self.tri_object.min() < 0 or self.tri_object.max() >= n_obj):
            raise ValueError("tri_object index out of range")

    @property
    def n_objects(self) -> int:
        return len(self.object_label)

    @property
    def n_triangles(self) -> int:
        return len(self.triangles)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(min xyz, max xyz) over all triangles."""
        if not len(self.triangles):
            raise ValueError("empty city mesh")
        pts = self.triangles.reshape(-1, 3)
        return pts.min(axis=0).astype(np.float64), pts.max(axis=0).astype(np.float64)

    def object_counts(self) -> dict[int, int]:
        """Storage label id -> number of objects."""
        ids, counts = np.unique(self.object_label, return_counts=True)
        return {int(i): int(c) for i, c in zip(ids, counts)}

    def select(self, keep_objects: np.ndarray) -> "CityMesh":
        """A new mesh with only the objects where keep_objects (O,) bool is True."""
        keep_objects = np.asarray(keep_objects, dtype=bool)
        remap = np.full(self.n_objects, -1, dtype=np.int64)
        remap[keep_objects] = np.arange(int(keep_objects.sum()))
        tri_keep = keep_objects[self.tri_object]
        return CityMesh(
            triangles=self.triangles[tri_keep],
            tri_object=remap[self.tri_object[tri_keep]],
            object_label=self.object_label[keep_objects],
            object_instance=self.object_instance[keep_objects],
            object_fill=self.object_fill[keep_objects],
            object_gml_id=[g for g, k in zip(self.object_gml_id, keep_objects) if k],
            origin=self.origin,
            source_files=list(self.source_files),
            skipped=dict(self.skipped),
        )

    @staticmethod
    def concatenate(meshes: list["CityMesh"]) -> "CityMesh":
        """Join meshes that share one local frame (instance ids must already be unique)."""
        if not meshes:
            raise ValueError("nothing to concatenate")
        offsets = np.cumsum([0] + [m.n_objects for m in meshes[:-1]])
        skipped: dict[str, int] = {}
        for m in meshes:
            for k, v in m.skipped.items():
                skipped[k] = skipped.get(k, 0) + v
        return CityMesh(
            triangles=np.concatenate([m.triangles for m in meshes]),
            tri_object=np.concatenate([m.tri_object + o for m, o in zip(meshes, offsets)]),
            object_label=np.concatenate([m.object_label for m in meshes]),
            object_instance=np.concatenate([m.object_instance for m in meshes]),
            object_fill=np.concatenate([m.object_fill for m in meshes]),
            object_gml_id=[g for m in meshes for g in m.object_gml_id],
            origin=meshes[0].origin,
            source_files=[f for m in meshes for f in m.source_files],
            skipped=skipped,
        )
