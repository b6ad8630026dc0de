"""VoxelWorld: the whole city as one dense column-major voxel grid, and the per-frame ego crop.

Layout: `objects[i, j, k]` is the object occupying world voxel (i, j, k), which covers
x in [x0 + i dx, x0 + (i+1) dx), y in [y0 + j dy, ...), z in [z0 + k dz, z0 + (k+1) dz) (world metres,
x east, y north, z up as in CityMesh). 0 = free; value v > 0 = object v - 1 of the mesh, or the synthetic
ground object (the last one) when the mesh has no terrain under some columns. Labels and instance ids
come from the lookup tables `object_label[v]` and `object_instance[v]` (the synthetic ground has
label terrain and instance 0). Z is the fastest axis, so one column is contiguous and an ego crop is a
gather of whole Z slices.

Level lattice and ego frames: world level k starts at z0 + k dz (z0 is a multiple of dz). The ego grid
(occworld_tokyo.grid) has levels starting at ground_z - 2 + 1.25 m; `ego_frame` snaps ground_z to
z0 + 2 + dz m (m integer) so that every grid level is exactly one world level, chosen so that the terrain
height under the agent lands in grid level 1, i.e. terrain - ground_z in [-0.75, 0.5) m. Grid level 0 is
then the level below the terrain voxel, and z = 0 of the ego frame is at most 0.75 m above and 0.5 m below
the terrain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..grid import DEFAULT_GRID, EgoFrame, GridSpec

EGO_GROUND_LEVEL = 1  # grid level that holds the terrain under the agent
LEVEL_EPS = 1e-3  # levels: float32 noise tolerance when a height sits on a level boundary


@dataclass
class VoxelWorld:
    x0: float  # world x of the corner of column (0, 0)
    y0: float
    z0: float  # world height of the bottom of level 0
    voxel_size: tuple[float, float, float]
    objects: np.ndarray  # (nx, ny, nz) uint16 or int32; 0 free, v = object v - 1
    object_label: np.ndarray  # (n + 1,) uint8
    object_instance: np.ndarray  # (n + 1,) int32
    ground: np.ndarray  # (nx, ny) float32 terrain height per column (world z)
    top: np.ndarray  # (nx, ny) float32 top of the highest occupied non-terrain voxel, else ground
    synthetic_ground: bool = False  # True when (some) terrain was estimated: the last object is that ground
    timings: dict[str, float] = field(default_factory=dict, repr=False)  # build stages -> seconds
    # where sessions may go: (xmin, ymin, xmax, ymax) world metres; None = the whole world. A region world
    # (occworld_tokyo.world.region) is built with a margin around it so that crops near its edge are complete.
    plan_area: tuple[float, float, float, float] | None = None
    # maps derived from this world (planning, streets, clearance), built on first use and dropped with the
    # world: occworld_tokyo.trajectories.maps.cached
    derived: dict = field(default_factory=dict, repr=False, compare=False)

    # ----------------------------------------------------------------- geometry
    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.objects.shape)

    @property
    def bounds_xy(self) -> tuple[float, float, float, float]:
        nx, ny, _ = self.objects.shape
        return (self.x0, self.y0, self.x0 + nx * self.voxel_size[0], self.y0 + ny * self.voxel_size[1])

    @property
    def plan_bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) world metres where trajectories may go: `plan_area`, else the whole world."""
        return tuple(self.plan_area) if self.plan_area is not None else self.bounds_xy

    @property
    def z_top(self) -> float:
        """World height of the top of the highest level (everything above is free)."""
        return self.z0 + self.objects.shape[2] * self.voxel_size[2]

    @property
    def labels(self) -> np.ndarray:
        """(nx, ny, nz) uint8 storage labels (a full copy: for inspection and tests, not per frame)."""
        return self.object_label[self.objects]

    def _column_float(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fractional column coordinates: column i's centre is at u = i."""
        u = (np.asarray(x, dtype=np.float64) - self.x0) / self.voxel_size[0] - 0.5
        v = (np.asarray(y, dtype=np.float64) - self.y0) / self.voxel_size[1] - 0.5
        return u, v

    def _column_index(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Column containing (x, y), clipped into the world, and whether it was inside."""
        nx, ny, _ = self.objects.shape
        i = np.floor((np.asarray(x, dtype=np.float64) - self.x0) / self.voxel_size[0]).astype(np.int64)
        j = np.floor((np.asarray(y, dtype=np.float64) - self.y0) / self.voxel_size[1]).astype(np.int64)
        inside = (i >= 0) & (i < nx) & (j >= 0) & (j < ny)
        return np.clip(i, 0, nx - 1), np.clip(j, 0, ny - 1), inside

    # ----------------------------------------------------------------- queries
    def ground_height(self, x, y) -> np.ndarray:
        """Terrain z at world (x, y): bilinear between column centres; outside the world: nearest edge."""
        nx, ny, _ = self.objects.shape
        u, v = self._column_float(x, y)
        u = np.clip(u, 0, nx - 1)
        v = np.clip(v, 0, ny - 1)
        i0 = np.minimum(np.floor(u).astype(np.int64), max(nx - 2, 0))
        j0 = np.minimum(np.floor(v).astype(np.int64), max(ny - 2, 0))
        i1, j1 = np.minimum(i0 + 1, nx - 1), np.minimum(j0 + 1, ny - 1)
        fu, fv = u - i0, v - j0
        g = self.ground
        out = (g[i0, j0] * (1 - fu) * (1 - fv) + g[i1, j0] * fu * (1 - fv)
               + g[i0, j1] * (1 - fu) * fv + g[i1, j1] * fu * fv)
        return np.asarray(out, dtype=np.float64)

    def surface_height(self, x, y) -> np.ndarray:
        """What a drone must clear at world (x, y): `top` of the column containing it (ground outside)."""
        i, j, inside = self._column_index(x, y)
        return np.where(inside, self.top[i, j].astype(np.float64), self.ground_height(x, y))

    def is_occupied(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N,) bool; points outside the world are free."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        i, j, inside = self._column_index(p[:, 0], p[:, 1])
        k = np.floor((p[:, 2] - self.z0) / self.voxel_size[2]).astype(np.int64)
        nz = self.objects.shape[2]
        inside &= (k >= 0) & (k < nz)
        occ = self.objects[i, j, np.clip(k, 0, nz - 1)] != 0
        return occ & inside

    def label_at(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N,) uint8 storage labels (0 outside the world)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        i, j, inside = self._column_index(p[:, 0], p[:, 1])
        k = np.floor((p[:, 2] - self.z0) / self.voxel_size[2]).astype(np.int64)
        nz = self.objects.shape[2]
        inside &= (k >= 0) & (k < nz)
        lab = self.object_label[self.objects[i, j, np.clip(k, 0, nz - 1)]]
        return np.where(inside, lab, 0).astype(np.uint8)

    # ----------------------------------------------------------------- ego frames and crops
    def snap_ground_z(self, terrain_z: float, grid: GridSpec = DEFAULT_GRID) -> float:
        """The ego ground_z for a terrain height (module docstring).

        ground_z = z0 - grid.z_lo + m dz with m = level(terrain) - grid.ground_level, so grid level k is world
        level m + k and the terrain's world level is grid level `grid.ground_level` (default grid: level 1,
        terrain - ground_z in [-0.75, 0.5) m; occ3d grid: level 2, terrain - ground_z in [-0.2, 0.2) m).
        """
        dz = self.voxel_size[2]
        level = np.floor((terrain_z - self.z0) / dz + LEVEL_EPS)
        return float(self.z0 - grid.z_range[0] + (level - grid.ground_level) * dz)

    def ego_frame(self, x: float, y: float, yaw: float, grid: GridSpec = DEFAULT_GRID) -> EgoFrame:
        """The yaw-only ego frame at (x, y) with ground_z = terrain under (x, y) snapped (module docstring)."""
        g = float(self.ground_height(x, y))
        return EgoFrame(x=float(x), y=float(y), yaw=float(yaw), ground_z=self.snap_ground_z(g, grid))

    def _crop_columns(self, frame: EgoFrame, grid: GridSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """World column (i, j) under every ego column centre, whether it is inside, and the first level k0.

        Ego column centres are rotated into the world and take the world column that contains them;
        levels are whole world levels starting at the one nearest to ground_z + grid.z_lo (exact when
        the frame comes from `ego_frame`).
        """
        dx, dy, dz = self.voxel_size
        nx, ny, _ = self.objects.shape
        ex, ey = grid.centers(0), grid.centers(1)
        c, s = np.cos(frame.yaw), np.sin(frame.yaw)
        # world position of ego column centre (a, b): (x + c ex - s ey, y + s ex + c ey), in column units
        fx = (frame.x - self.x0) / dx + (c * ex / dx)[:, None] - (s * ey / dx)[None, :]
        fy = (frame.y - self.y0) / dy + (s * ex / dy)[:, None] + (c * ey / dy)[None, :]
        i = np.floor(fx).astype(np.int64)
        j = np.floor(fy).astype(np.int64)
        inside = (i >= 0) & (i < nx) & (j >= 0) & (j < ny)
        k0 = int(np.round((frame.ground_z + grid.z_range[0] - self.z0) / dz))
        return np.where(inside, i, 0), np.where(inside, j, 0), inside, k0

    def crop_objects(self, frame: EgoFrame, grid: GridSpec = DEFAULT_GRID) -> np.ndarray:
        """(X, Y, Z) object values of the ego grid (same dtype as `objects`); outside the world = 0.

        Pure numpy: gathers whole Z slices of the selected world columns at once.
        """
        nxg, nyg, nzg = grid.shape
        nx, ny, nz = self.objects.shape
        ii, jj, inside, k0 = self._crop_columns(frame, grid)
        lo, hi = max(k0, 0), min(k0 + nzg, nz)
        out = np.zeros((nxg, nyg, nzg), dtype=self.objects.dtype)
        if hi <= lo or not inside.any():
            return out
        sub = self.objects.reshape(nx * ny, nz)[ii * ny + jj, lo:hi]
        sub[~inside] = 0
        out[:, :, lo - k0:hi - k0] = sub
        return out

    def crop(self, frame: EgoFrame, grid: GridSpec = DEFAULT_GRID) -> tuple[np.ndarray, np.ndarray]:
        """(labels uint8 (200, 200, 121), instances int32 (200, 200, 121)) of the ego grid, [X, Y, Z].

        X forward, Y left, Z up; outside the world (and above its top) = free (label 0, instance 0).
        One compiled pass (kernels.gather_columns) that looks up only occupied voxels; equal to
        `object_label[crop_objects(...)]`, `object_instance[crop_objects(...)]` (tested).
        """
        from .kernels import gather_columns

        ii, jj, inside, k0 = self._crop_columns(frame, grid)
        return gather_columns(self.objects, ii, jj, inside, k0, grid.shape[2], self.object_label,
                              self.object_instance)
