"""A small hand-made voxel world for the trajectory tests (a test double of world.VoxelWorld).

It implements exactly the VoxelWorld members the planners use, from a height map:
a sloping terrain, a street grid (road voxels on the terrain), blocks of buildings of random heights,
one 150 m tower (too tall to overfly inside the 120 m band) and one 70 m building.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from occworld_tokyo.labels import BUILDING, ROAD, TERRAIN


@dataclass
class FakeVoxelWorld:
    x0: float
    y0: float
    z0: float
    voxel_size: tuple[float, float, float]
    objects: np.ndarray  # (nx, ny, nz) uint16
    object_label: np.ndarray  # (n + 1,) uint8
    ground: np.ndarray  # (nx, ny) float32
    top: np.ndarray  # (nx, ny) float32

    @property
    def bounds_xy(self) -> tuple[float, float, float, float]:
        nx, ny = self.ground.shape
        return (self.x0, self.y0, self.x0 + nx * self.voxel_size[0], self.y0 + ny * self.voxel_size[1])

    def _cols(self, x, y):
        i = np.floor((np.asarray(x, dtype=np.float64) - self.x0) / self.voxel_size[0]).astype(np.int64)
        j = np.floor((np.asarray(y, dtype=np.float64) - self.y0) / self.voxel_size[1]).astype(np.int64)
        nx, ny = self.ground.shape
        return np.clip(i, 0, nx - 1), np.clip(j, 0, ny - 1)

    def ground_height(self, x, y) -> np.ndarray:
        """Bilinear between column centres (as the real VoxelWorld does)."""
        nx, ny = self.ground.shape
        u = np.clip((np.asarray(x, dtype=np.float64) - self.x0) / self.voxel_size[0] - 0.5, 0, nx - 1)
        v = np.clip((np.asarray(y, dtype=np.float64) - self.y0) / self.voxel_size[1] - 0.5, 0, ny - 1)
        i0 = np.minimum(np.floor(u).astype(np.int64), nx - 2)
        j0 = np.minimum(np.floor(v).astype(np.int64), ny - 2)
        fu, fv = u - i0, v - j0
        g = self.ground.astype(np.float64)
        return (g[i0, j0] * (1 - fu) * (1 - fv) + g[i0 + 1, j0] * fu * (1 - fv)
                + g[i0, j0 + 1] * (1 - fu) * fv + g[i0 + 1, j0 + 1] * fu * fv)

    def surface_height(self, x, y) -> np.ndarray:
        i, j = self._cols(x, y)
        return self.top[i, j]

    def is_occupied(self, points) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        idx = np.floor((p - [self.x0, self.y0, self.z0]) / np.array(self.voxel_size)).astype(np.int64)
        inside = np.all((idx >= 0) & (idx < np.array(self.objects.shape)), axis=1)
        out = np.zeros(len(p), dtype=bool)
        k = idx[inside]
        out[inside] = self.objects[k[:, 0], k[:, 1], k[:, 2]] != 0
        return out


def make_fake_city(size: float = 560.0, voxel: tuple[float, float, float] = (2.0, 2.0, 1.25), seed: int = 0,
                   block: float = 70.0, street: float = 14.0, x0: float = 1000.0, y0: float = -500.0,
                   all_built: bool = False) -> FakeVoxelWorld:
    """Sloping terrain (z 50 m .. ~70 m), a street grid every `block` m, buildings in the blocks."""
    rng = np.random.default_rng(seed)
    n = int(round(size / voxel[0]))
    xs = x0 + (np.arange(n) + 0.5) * voxel[0]
    ys = y0 + (np.arange(n) + 0.5) * voxel[1]
    X, Y = np.meshgrid(xs - x0, ys - y0, indexing="ij")
    ground = (50.0 + 0.025 * X + 6.0 * np.sin(Y / 90.0)).astype(np.float32)
    z0 = 40.0
    dz = voxel[2]
    # street mask: bands of width `street` every `block` metres in x and y
    in_street = ((X % block) < street) | ((Y % block) < street)
    if all_built:
        in_street[:] = False
    height = np.zeros((n, n), dtype=np.float32)
    bid = np.zeros((n, n), dtype=np.int32)
    lot = 35.0  # two lots per block side
    li = (X // lot).astype(int)
    lj = (Y // lot).astype(int)
    lots = li * 1000 + lj
    uniq, inv = np.unique(lots, return_inverse=True)
    lot_h = rng.uniform(8.0, 60.0, len(uniq)).astype(np.float32)
    height_all = lot_h[inv.reshape(lots.shape)]
    # a 150 m tower and a 70 m building in two lots near the middle
    mid = size / 2
    tower = (np.abs(X - (mid - block / 2 + street / 2)) < 12) & (np.abs(Y - (mid - block / 2 + street / 2)) < 12)
    mid_b = (np.abs(X - (mid + block / 2 + street / 2)) < 14) & (np.abs(Y - (mid + block / 2 + street / 2)) < 10)
    height_all = np.where(tower, 150.0, np.where(mid_b, 70.0, height_all))
    # building footprints keep a 2 m gap to the street (free terrain = "sidewalk")
    near_street = ((X % block) < street + 2) | ((Y % block) < street + 2) | ((X % block) > block - 2) | (
        (Y % block) > block - 2)
    built = ~near_street if not all_built else np.ones_like(in_street)
    height = np.where(built, height_all, 0.0).astype(np.float32)
    bid = np.where(built, 3 + inv.reshape(lots.shape), 0)
    bid = np.where(built & tower, 3 + len(uniq), bid)
    bid = np.where(built & mid_b, 4 + len(uniq), bid)
    top_abs = ground + height
    nz = int(np.ceil((float(top_abs.max()) + 5 - z0) / dz))
    objects = np.zeros((n, n, nz), dtype=np.uint16)
    k = np.arange(nz)[None, None, :]
    k_ground = np.floor((ground - z0) / dz).astype(np.int64)[..., None]  # level holding the terrain surface
    objects[k < k_ground] = 1  # terrain fill
    surf = k == k_ground
    objects[surf & in_street[..., None]] = 2  # road surface voxel
    objects[surf & ~in_street[..., None]] = 1
    k_top = np.ceil((top_abs - z0) / dz).astype(np.int64)[..., None]
    bmask = (k >= k_ground) & (k < k_top) & built[..., None]
    objects[bmask] = np.broadcast_to(bid[..., None], objects.shape)[bmask].astype(np.uint16)
    n_obj = int(bid.max()) + 1
    object_label = np.full(n_obj, BUILDING, dtype=np.uint8)
    object_label[0] = 0
    object_label[1] = TERRAIN
    object_label[2] = ROAD
    occ = objects != 0
    kmax = nz - 1 - np.argmax(occ[..., ::-1], axis=2)
    top = (z0 + (kmax + 1) * dz).astype(np.float32)
    return FakeVoxelWorld(x0, y0, z0, voxel, objects, object_label, ground, top)
