"""Region worlds: the voxel world of the part of a city one session needs, built from the tile cache.

A session's *plan area* (x east, y north, metres in its place's frame) is where its trajectory may go. The
region world covers the plan area grown by `CROP_MARGIN` on every side, enough for any ego crop whose centre
lies in the plan area (the grid's half diagonal, 56.6 m, plus slack), so a crop never runs off the built
voxels while the city continues (cut to the place's data extent, plus 1 m: beyond it there is nothing; where the
data is smaller than the smallest plan area, `world_limit`, the world reaches around it as open ground). Its column lattice is the city-wide one (corner at multiples of the column
size) and its levels the city-wide one (z0 a multiple of dz), so a crop of a region world equals the crop
of one dense world of the whole place (tested). Geometry comes from `CityIndex.load_region`: only the cached
tiles that reach the region are read; objects crossing its edge are kept whole (an object crossing the outer
edge is voxelized only inside it; the margin keeps that away from any crop).

Memory is bounded by the region, not the city: about 1.6 GB per km^2 of region with 150 m of headroom
(REFERENCE.md section 8); an 800 m plan area makes a 0.93 x 0.93 km world. A world is built when its session
starts and dropped when the next session needs another region (`RegionWorlds` keeps at most one).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..citymodel.index import CityIndex, Place
from ..citymodel.mesh import CityMesh
from ..grid import DEFAULT_GRID, GridSpec
from .voxel_world import VoxelWorld
from .voxelize import build_voxel_world

SENSOR_MARGIN = 130.0  # m around the plan area that the sensors' scene holds (lidar range 120 m + slack)


def crop_margin(grid: GridSpec = DEFAULT_GRID) -> float:
    """Metres a crop reaches beyond its centre (half diagonal of the grid) plus 4 m, rounded up to 4 m."""
    import math

    half = math.hypot(*(max(abs(a), abs(b)) for a, b in (grid.x_range, grid.y_range)))
    return 4.0 * math.ceil((half + 4.0) / 4.0)


def _clip(a: tuple[float, float, float, float], b: tuple[float, float, float, float]
          ) -> tuple[float, float, float, float]:
    return (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))


def grow(bounds: tuple[float, float, float, float], m: float) -> tuple[float, float, float, float]:
    return (bounds[0] - m, bounds[1] - m, bounds[2] + m, bounds[3] + m)


@dataclass
class RegionWorld:
    """What a session uses: the world (voxels, derived maps), the mesh it was built from, and the sensors' mesh."""

    place: Place
    plan_area: tuple[float, float, float, float]
    world: VoxelWorld
    mesh: CityMesh  # objects meeting the world's bounds (voxelized)
    sensor_mesh: CityMesh  # objects meeting the plan area grown by SENSOR_MARGIN (ray cast)
    crop_world: VoxelWorld | None = None  # the same region at the grid's levels when they differ (crop_world_for)


def crop_world_for(mesh: CityMesh, world: VoxelWorld, grid: GridSpec, *, progress: bool = False) -> VoxelWorld | None:
    """None when `grid`'s voxels are the world's; else the same area voxelized from the geometry at the grid's
    voxel size (never resampled from the 1.25 m levels; headroom: the grid's top + 2 m above the highest ground).
    Crops come from it; trajectories, traffic and sensors keep `world`."""
    if tuple(grid.voxel_size) == tuple(world.voxel_size):
        return None
    return build_voxel_world(mesh, voxel_size=grid.voxel_size, headroom=grid.z_range[1] + 2.0, progress=progress,
                             bounds=world.bounds_xy)


def world_limit(data: tuple[float, float, float, float], plan_area: tuple[float, float, float, float],
                grid: GridSpec = DEFAULT_GRID) -> tuple[float, float, float, float]:
    """How far a region world may reach (place frame, m): the place's data + 1 m, except along an axis where the
    plan area sticks out of the data (data smaller than sessions.regions.MIN_PLAN_SIDE, centred in a larger
    plan area): there the plan area + the crop margin, open ground around the data, so that every crop of the
    plan area lies on built voxels."""
    lim = list(grow(data, 1.0))
    out = grow(plan_area, crop_margin(grid))
    for lo, hi in ((0, 2), (1, 3)):
        if plan_area[lo] < data[lo] - 1.0 or plan_area[hi] > data[hi] + 1.0:
            lim[lo], lim[hi] = min(lim[lo], out[lo]), max(lim[hi], out[hi])
    return tuple(lim)


def build_region_world(index: CityIndex, place: Place, plan_area: tuple[float, float, float, float], *,
                       grid: GridSpec = DEFAULT_GRID, progress: bool = False,
                       voxel_size: tuple[float, float, float] = (0.4, 0.4, 1.25)) -> RegionWorld:
    """The region world of `plan_area` (module docstring); voxel_size as build_voxel_world."""
    outer = _clip(grow(plan_area, crop_margin(grid)), world_limit(place.bounds, plan_area, grid))
    mesh = index.load_region(place, outer)
    world = build_voxel_world(mesh, bounds=outer, progress=progress, voxel_size=voxel_size)
    world.plan_area = tuple(float(v) for v in plan_area)
    sensor = index.load_region(place, grow(plan_area, max(SENSOR_MARGIN, crop_margin(grid))))
    return RegionWorld(place, world.plan_area, world, mesh, sensor, crop_world_for(mesh, world, grid))


class RegionWorlds:
    """At most one region world per process: reused while sessions ask for the same region, replaced (and the
    old one freed) when they ask for another."""

    def __init__(self, index: CityIndex, grid: GridSpec = DEFAULT_GRID) -> None:
        self.index = index
        self.grid = grid
        self.current: RegionWorld | None = None
        self.key: tuple | None = None
        self.built = 0

    def get(self, place_id: int, plan_area: tuple[float, float, float, float]) -> RegionWorld:
        key = (place_id, tuple(round(v, 6) for v in plan_area))
        if key != self.key:
            self.current, self.key = None, None  # free the old world before building the new one
            place = next(p for p in self.index.places if p.id == place_id)
            self.current = build_region_world(self.index, place, plan_area, grid=self.grid)
            self.key = key
            self.built += 1
        assert self.current is not None
        return self.current
