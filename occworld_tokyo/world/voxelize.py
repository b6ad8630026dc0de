"""build_voxel_world: CityMesh -> VoxelWorld by column rasterisation (numpy, no mesh voxelizer).

Semantics per object fill mode (occworld_tokyo.citymodel.mesh.Fill):
- SOLID: every triangle is rasterised over the column centres it covers; per (object, column) the lowest
  and highest hit bound the interior, and all levels overlapping [zmin, zmax] are filled. Vertical walls
  cover no centre. Space under a bridge deck or under another object's overhang stays free because each
  object is reduced on its own. One-hit columns (a gap in a LOD2 floor or roof, float noise at an edge):
  the hit is taken as the floor or the roof, whichever of the object's median floor / median roof
  (over its two-hit columns) is nearer, and the run goes to the other one; an object with no two-hit
  column at all (an open shell) is filled from its lowest vertex up to the hit.
- SURFACE: the level containing each surface hit.
- TERRAIN: per column the highest terrain hit is the ground; filled from level 0 up to it.
- Columns with no terrain (no dem, or outside the dem): ground estimated from building bases and road
  surfaces (occworld_tokyo.world.ground) and filled as one synthetic TERRAIN object with instance 0.
- Objects too small or too vertical to cover any column centre (poles, thin signs) get the column that
  contains their bounding-box centre, filled over their height, so no object disappears.

Level rules (dz = 1.25 m, z0 a multiple of dz): a point or surface at z is in level floor((z - z0) / dz);
a solid [zb, zt] fills the levels that overlap it with positive length (a flat roof exactly on a level
boundary does not spill into the next level); terrain at height g fills levels 0 .. floor((g - z0) / dz).
A 1e-3-level tolerance absorbs float32 noise at boundaries.

Priority when several objects claim a voxel (higher wins; `LABEL_PRIORITY`): building > bridge > railway >
road > sidewalk > water > city furniture > vegetation > other > terrain. Between objects of the same
priority the lower object index wins. The result is a pure function of the mesh.

Z extent: from the lattice level at or below min(ground) - 2 m, minus one more level, up to
min(highest object top, max(ground) + headroom), rounded up to whole levels. Above it everything is free.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from .. import labels as L
from ..citymodel.mesh import CityMesh, Fill
from .ground import estimate_ground, object_base_samples
from .raster import ColumnLattice, lattice_for_bounds, sample_triangles
from .voxel_world import LEVEL_EPS, VoxelWorld

LABEL_PRIORITY: dict[int, int] = {
    L.BUILDING: 10, L.BRIDGE: 9, L.RAILWAY: 8, L.ROAD: 7, L.SIDEWALK: 6, L.WATER: 5,
    L.CITY_FURNITURE: 4, L.VEGETATION: 3, L.OTHER: 2, L.TERRAIN: 1,
    L.VEHICLE: 11, L.PEDESTRIAN: 11, L.DRONE: 11,
}
_LEVEL_EPS = LEVEL_EPS  # in levels
_THIN = 0.01  # m: a SOLID column whose hits span less than this is a one-hit column
_GROUND_CELL = 8.0  # m: coarse cell of the ground estimate
_WRITE_CHUNK = 8_000_000  # voxels per write batch


@dataclass
class _Samples:
    obj: np.ndarray  # int64 object index (0-based, mesh order)
    col: np.ndarray  # int64 flat column i * ny + j
    z: np.ndarray  # float32

    @staticmethod
    def empty() -> "_Samples":
        return _Samples(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))


@dataclass
class _Runs:
    """Vertical runs to write: column, first and last level (inclusive), object value (1-based)."""

    col: np.ndarray
    k_lo: np.ndarray
    k_hi: np.ndarray
    value: np.ndarray

    @staticmethod
    def concat(runs: list["_Runs"]) -> "_Runs":
        return _Runs(*(np.concatenate([getattr(r, f) for r in runs]).astype(np.int64)
                       for f in ("col", "k_lo", "k_hi", "value")))


@dataclass(frozen=True)
class _Levels:
    z0: float
    dz: float
    nz: int

    def point(self, z: np.ndarray) -> np.ndarray:
        return np.floor((np.asarray(z, np.float64) - self.z0) / self.dz + _LEVEL_EPS).astype(np.int64)

    def span(self, zb: np.ndarray, zt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo = self.point(zb)
        hi = np.ceil((np.asarray(zt, np.float64) - self.z0) / self.dz - _LEVEL_EPS).astype(np.int64) - 1
        return lo, np.maximum(hi, lo)


# --------------------------------------------------------------------------- sampling
def _sample_fill(mesh: CityMesh, fill: Fill, lat: ColumnLattice, bar: tqdm) -> _Samples:
    sel = np.nonzero(mesh.object_fill[mesh.tri_object] == int(fill))[0]
    if len(sel) == 0:
        return _Samples.empty()
    tri_obj = mesh.tri_object[sel].astype(np.int64)
    parts = []
    for t, col, z in sample_triangles(mesh.triangles[sel], lat):
        parts.append(_Samples(tri_obj[t], col, z))
        bar.update(1)
    if not parts:
        return _Samples.empty()
    return _Samples(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("obj", "col", "z")))


# --------------------------------------------------------------------------- terrain and ground
def _dem_top(s: _Samples, n_columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Per column: highest terrain hit (-inf where none) and the 1-based object value that gave it."""
    top = np.full(n_columns, -np.inf, dtype=np.float32)
    val = np.zeros(n_columns, dtype=np.int64)
    if len(s.z):
        np.maximum.at(top, s.col, s.z)
        best = s.z >= top[s.col]
        val[s.col[best]] = s.obj[best] + 1
    return top, val


def _ground_samples(mesh: CityMesh, lat: ColumnLattice, dem: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ground samples for the estimate: building bases, road/sidewalk vertices, and (thinned) dem columns."""
    xy_parts, z_parts = [], []
    bldg = np.nonzero((mesh.object_label == L.BUILDING) & (mesh.object_fill == Fill.SOLID))[0]
    xy, z = object_base_samples(mesh.triangles, mesh.tri_object, bldg)
    xy_parts.append(xy)
    z_parts.append(z)
    road_objs = np.isin(mesh.object_label, [L.ROAD, L.SIDEWALK]) & (mesh.object_fill == Fill.SURFACE)
    if road_objs.any():
        v = mesh.triangles[road_objs[mesh.tri_object]].reshape(-1, 3).astype(np.float64)
        xy_parts.append(v[:, :2])
        z_parts.append(v[:, 2])
    d = dem.reshape(lat.nx, lat.ny)
    step = max(1, int(round(_GROUND_CELL / 2 / lat.dx)))
    sub = d[::step, ::step]
    ii, jj = np.nonzero(np.isfinite(sub))
    if len(ii):
        xy_parts.append(np.stack([lat.centers_x()[ii * step], lat.centers_y()[jj * step]], axis=1))
        z_parts.append(sub[ii, jj].astype(np.float64))
    return np.concatenate(xy_parts), np.concatenate(z_parts)


def _ground_map(mesh: CityMesh, lat: ColumnLattice, dem: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ground (nx, ny) float32, has_dem (nx, ny) bool)."""
    has_dem = np.isfinite(dem).reshape(lat.nx, lat.ny)
    ground = dem.reshape(lat.nx, lat.ny).astype(np.float32).copy()
    if has_dem.all():
        return ground, has_dem
    xy, z = _ground_samples(mesh, lat, dem)
    if len(z):
        est = estimate_ground(xy, z, lat, cell=_GROUND_CELL)
    else:  # nothing stands on anything: the lowest point of the model
        est = np.full((lat.nx, lat.ny), mesh.bounds()[0][2], dtype=np.float32)
    ground[~has_dem] = est[~has_dem]
    return ground, has_dem


def _z_levels(mesh: CityMesh, ground: np.ndarray, dz: float, headroom: float) -> _Levels:
    gmin, gmax = float(ground.min()), float(ground.max())
    z0 = dz * np.floor((gmin - 2.0) / dz + _LEVEL_EPS) - dz
    non_terrain = mesh.object_fill[mesh.tri_object] != Fill.TERRAIN
    obj_top = float(mesh.triangles[non_terrain][:, :, 2].max()) if non_terrain.any() else gmax
    z_top = min(max(obj_top, gmax), gmax + headroom)
    nz = int(np.ceil((z_top - z0) / dz - _LEVEL_EPS))
    nz = max(nz, int(np.floor((gmax - z0) / dz + _LEVEL_EPS)) + 1, 1)
    return _Levels(float(z0), float(dz), nz)


def _fill_terrain(objects: np.ndarray, ground: np.ndarray, value: np.ndarray, lv: _Levels, bar: tqdm) -> None:
    """objects[i, j, 0 .. level(ground[i, j])] = value[i, j], one level at a time (level planes are cheap)."""
    kg = np.clip(lv.point(ground), 0, lv.nz - 1)
    value = value.astype(objects.dtype)
    for k in range(int(kg.max()) + 1):
        inside = kg >= k
        plane = objects[:, :, k]
        if inside.all():
            plane[...] = value
        else:
            plane[inside] = value[inside]
        bar.update(1)


# --------------------------------------------------------------------------- solids and surfaces
def _group_solid(s: _Samples, n_columns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reduce SOLID samples per (object, column): (obj, col, zmin, zmax), sorted by object then column."""
    key = s.obj * n_columns + s.col
    order = np.argsort(key, kind="stable")
    k = key[order]
    z = s.z[order]
    start = np.concatenate([[0], np.nonzero(k[1:] != k[:-1])[0] + 1])
    zmin = np.minimum.reduceat(z, start)
    zmax = np.maximum.reduceat(z, start)
    gk = k[start]
    return gk // n_columns, gk % n_columns, zmin.astype(np.float64), zmax.astype(np.float64)


def _object_medians(obj: np.ndarray, zmin: np.ndarray, zmax: np.ndarray, n_obj: int) -> tuple[np.ndarray, np.ndarray]:
    """Per object: median floor and median roof over its two-hit columns (NaN where it has none)."""
    med_lo = np.full(n_obj, np.nan)
    med_hi = np.full(n_obj, np.nan)
    if len(obj) == 0:
        return med_lo, med_hi
    for vals, out in ((zmin, med_lo), (zmax, med_hi)):
        order = np.lexsort((vals, obj))
        o = obj[order]
        start = np.concatenate([[0], np.nonzero(o[1:] != o[:-1])[0] + 1])
        count = np.diff(np.concatenate([start, [len(o)]]))
        out[o[start]] = vals[order][start + count // 2]
    return med_lo, med_hi


def _solid_runs(s: _Samples, mesh: CityMesh, lat: ColumnLattice, lv: _Levels) -> _Runs:
    if len(s.z) == 0:
        return _Runs(*(np.zeros(0, np.int64) for _ in range(4)))
    obj, col, zmin, zmax = _group_solid(s, lat.n_columns)
    thin = (zmax - zmin) < _THIN
    med_lo, med_hi = _object_medians(obj[~thin], zmin[~thin], zmax[~thin], mesh.n_objects)
    if thin.any():
        h = zmin[thin]
        lo_t, hi_t = med_lo[obj[thin]], med_hi[obj[thin]]
        known = np.isfinite(lo_t)
        is_floor = known & (np.abs(h - lo_t) < np.abs(hi_t - h))
        new_lo = np.where(is_floor, h, np.where(known, np.minimum(lo_t, h), h))
        new_hi = np.where(is_floor, np.maximum(hi_t, h), h)
        # open shells (no two-hit column anywhere): down to the object's lowest vertex
        shell_base = _object_min_z(mesh)[obj[thin]]
        new_lo = np.where(known, new_lo, np.minimum(shell_base, h))
        zmin = zmin.copy()
        zmax = zmax.copy()
        zmin[thin], zmax[thin] = new_lo, new_hi
    k_lo, k_hi = lv.span(zmin, zmax)
    return _Runs(col, k_lo, k_hi, obj + 1)


def _object_min_z(mesh: CityMesh) -> np.ndarray:
    out = np.full(mesh.n_objects, np.inf)
    np.minimum.at(out, mesh.tri_object, mesh.triangles[:, :, 2].min(axis=1).astype(np.float64))
    return out


def _surface_runs(s: _Samples, lat: ColumnLattice, lv: _Levels) -> _Runs:
    """Per (object, column): the level of the lowest and (if different) of the highest hit."""
    if len(s.z) == 0:
        return _Runs(*(np.zeros(0, np.int64) for _ in range(4)))
    obj, col, zmin, zmax = _group_solid(s, lat.n_columns)
    k1, k2 = lv.point(zmin), lv.point(zmax)
    two = k2 != k1
    return _Runs(np.concatenate([col, col[two]]), np.concatenate([k1, k2[two]]), np.concatenate([k1, k2[two]]),
                 np.concatenate([obj, obj[two]]) + 1)


def _fallback_runs(mesh: CityMesh, covered: np.ndarray, lat: ColumnLattice, lv: _Levels) -> _Runs:
    """One column at the bbox centre for every SOLID/SURFACE object that covered no column centre."""
    want = ~covered & (mesh.object_fill != Fill.TERRAIN)
    objs = np.nonzero(want & np.isin(np.arange(mesh.n_objects), mesh.tri_object))[0]
    if len(objs) == 0:
        return _Runs(*(np.zeros(0, np.int64) for _ in range(4)))
    n = mesh.n_objects
    lo = np.full((n, 3), np.inf)
    hi = np.full((n, 3), -np.inf)
    tri = mesh.triangles.astype(np.float64)
    np.minimum.at(lo, mesh.tri_object, tri.min(axis=1))
    np.maximum.at(hi, mesh.tri_object, tri.max(axis=1))
    c = (lo[objs, :2] + hi[objs, :2]) / 2
    i = np.clip(np.floor((c[:, 0] - lat.x0) / lat.dx), 0, lat.nx - 1).astype(np.int64)
    j = np.clip(np.floor((c[:, 1] - lat.y0) / lat.dy), 0, lat.ny - 1).astype(np.int64)
    k_lo, k_hi = lv.span(lo[objs, 2], hi[objs, 2])
    return _Runs(i * lat.ny + j, k_lo, k_hi, objs + 1)


def _write_runs(objects: np.ndarray, runs: _Runs, priority: np.ndarray, bar: tqdm) -> np.ndarray:
    """Write runs lowest priority first (same priority: higher object value first, so lower wins).

    Returns the per-column highest written level (-1 where nothing was written), (n_columns,).
    """
    nz = objects.shape[2]
    flat_obj = objects.reshape(-1)
    top_level = np.full(objects.shape[0] * objects.shape[1], -1, dtype=np.int64)
    k_lo = np.clip(runs.k_lo, 0, None)
    k_hi = np.minimum(runs.k_hi, nz - 1)
    ok = k_hi >= k_lo
    col, k_lo, k_hi, val = runs.col[ok], k_lo[ok], k_hi[ok], runs.value[ok]
    if len(col) == 0:
        return top_level
    np.maximum.at(top_level, col, k_hi)
    order = np.lexsort((-val, priority[val]))
    col, k_lo, k_hi, val = col[order], k_lo[order], k_hi[order], val[order]
    length = k_hi - k_lo + 1
    ends = np.cumsum(length)
    start = 0
    while start < len(col):
        stop = int(np.searchsorted(ends, (ends[start - 1] if start else 0) + _WRITE_CHUNK, side="right"))
        stop = max(stop, start + 1)
        ln = length[start:stop]
        first = np.cumsum(ln) - ln
        offs = np.arange(int(ln.sum()), dtype=np.int64) - np.repeat(first, ln)
        flat = np.repeat(col[start:stop] * nz + k_lo[start:stop], ln) + offs
        flat_obj[flat] = np.repeat(val[start:stop], ln).astype(objects.dtype)
        bar.update(stop - start)
        start = stop
    return top_level


# --------------------------------------------------------------------------- engines
def _numpy_terrain(mesh: CityMesh, lat: ColumnLattice, bar: tqdm) -> tuple[np.ndarray, np.ndarray]:
    return _dem_top(_sample_fill(mesh, Fill.TERRAIN, lat, bar), lat.n_columns)


def _numpy_runs(mesh: CityMesh, lat: ColumnLattice, lv: _Levels, bar: tqdm) -> _Runs:
    solid = _sample_fill(mesh, Fill.SOLID, lat, bar)
    surface = _sample_fill(mesh, Fill.SURFACE, lat, bar)
    covered = np.zeros(mesh.n_objects, dtype=bool)
    covered[solid.obj] = True
    covered[surface.obj] = True
    return _Runs.concat([_solid_runs(solid, mesh, lat, lv), _surface_runs(surface, lat, lv),
                         _fallback_runs(mesh, covered, lat, lv)])


def _lattice_args(lat: ColumnLattice) -> tuple:
    return lat.x0, lat.y0, lat.dx, lat.dy, lat.nx, lat.ny


def _numba_terrain(mesh: CityMesh, lat: ColumnLattice) -> tuple[np.ndarray, np.ndarray]:
    from . import kernels

    sel = np.nonzero(mesh.object_fill[mesh.tri_object] == Fill.TERRAIN)[0]
    tris = mesh.triangles[sel].astype(np.float64)
    return kernels.terrain_top(tris, mesh.tri_object[sel].astype(np.int64), *_lattice_args(lat))


def _numba_runs(mesh: CityMesh, lat: ColumnLattice, lv: _Levels) -> _Runs:
    from . import kernels

    order = np.argsort(mesh.tri_object, kind="stable")
    tris = mesh.triangles[order].astype(np.float64)
    obj_start = np.searchsorted(mesh.tri_object[order], np.arange(mesh.n_objects + 1)).astype(np.int64)
    return _Runs(*kernels.object_runs(tris, obj_start, mesh.object_fill.astype(np.int64), *_lattice_args(lat),
                                      lv.z0, lv.dz))


# --------------------------------------------------------------------------- entry point
ENGINES = ("numba", "numpy")


def build_voxel_world(mesh: CityMesh, *, voxel_size: tuple[float, float, float] = (0.4, 0.4, 1.25),
                      margin: float = 0.0, headroom: float = 150.0, progress: bool = True,
                      engine: str = "numba", bounds: tuple[float, float, float, float] | None = None) -> VoxelWorld:
    """Voxelize a CityMesh into a VoxelWorld (module docstring for the rules).

    bounds: (xmin, ymin, xmax, ymax) metres of the mesh frame to voxelize (snapped outwards to the column
    lattice, whose corner is a multiple of the column size, so worlds of different bounds share one lattice);
    None = the mesh's extent grown by `margin`. Geometry outside the bounds is left out.

    engine: "numba" (default, compiled kernels in `kernels.py`) or "numpy" (the vectorised reference);
    both give identical worlds. The returned world's `timings` records seconds per stage.
    """
    if mesh.n_triangles == 0:
        raise ValueError("cannot build a voxel world from an empty city mesh")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    dx, dy, dz = (float(v) for v in voxel_size)
    timings: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - t
        t = now

    if bounds is None:
        lo, hi = mesh.bounds()
        lat = lattice_for_bounds(lo[0], lo[1], hi[0], hi[1], dx, dy, margin)
    else:
        lat = lattice_for_bounds(*bounds, dx, dy, 0.0)
    bar = tqdm(total=5, desc="voxel world", unit="stage", disable=not progress, leave=False)
    if engine == "numba":
        dem, dem_val = _numba_terrain(mesh, lat)
    else:
        dem, dem_val = _numpy_terrain(mesh, lat, tqdm(disable=True))
    bar.update(1)
    lap("terrain_raster")

    ground, has_dem = _ground_map(mesh, lat, dem)
    lv = _z_levels(mesh, ground, dz, headroom)
    bar.update(1)
    lap("ground")

    synthetic = not bool(has_dem.all())
    n_values = mesh.n_objects + 1 + int(synthetic)
    dtype = np.uint16 if n_values - 1 <= np.iinfo(np.uint16).max else np.int32
    object_label = np.concatenate([[L.FREE], mesh.object_label, [L.TERRAIN] * int(synthetic)]).astype(np.uint8)
    object_instance = np.concatenate([[0], mesh.object_instance, [0] * int(synthetic)]).astype(np.int32)
    objects = np.zeros((lat.nx, lat.ny, lv.nz), dtype=dtype)
    terrain_value = np.where(has_dem, dem_val.reshape(lat.nx, lat.ny), n_values - 1)
    _fill_terrain(objects, ground, terrain_value, lv, tqdm(disable=True))
    bar.update(1)
    lap("terrain_fill")

    if engine == "numba":
        runs = _numba_runs(mesh, lat, lv)
    else:
        runs = _numpy_runs(mesh, lat, lv, tqdm(disable=True))
    bar.update(1)
    lap("objects_raster")

    priority = np.array([0] + [LABEL_PRIORITY.get(int(l), 0) for l in object_label[1:]], dtype=np.int64)
    if engine == "numba":
        from . import kernels

        top_level = kernels.write_runs(objects.reshape(-1), lv.nz, runs.col, runs.k_lo, runs.k_hi, runs.value,
                                       priority)
    else:
        top_level = _write_runs(objects, runs, priority, tqdm(disable=True))
    top_level = top_level.reshape(lat.nx, lat.ny)
    top = np.where(top_level >= 0, np.maximum(lv.z0 + (top_level + 1) * dz, ground), ground).astype(np.float32)
    bar.update(1)
    bar.close()
    lap("write")

    return VoxelWorld(x0=lat.x0, y0=lat.y0, z0=lv.z0, voxel_size=(dx, dy, dz), objects=objects,
                      object_label=object_label, object_instance=object_instance, ground=ground, top=top,
                      synthetic_ground=synthetic, timings=timings)
