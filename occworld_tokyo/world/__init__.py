"""The voxel world: a CityMesh voxelized once per city, and the per-frame ego-centric crop."""

from .voxel_world import EGO_GROUND_LEVEL, VoxelWorld
from .voxelize import LABEL_PRIORITY, build_voxel_world

__all__ = ["VoxelWorld", "build_voxel_world", "LABEL_PRIORITY", "EGO_GROUND_LEVEL"]
