"""Per-frame cost of giving the sensors a scene with the moving agents in it (docs/benchmarks.md, "Sensors").

python benchmarks/bench_agent_scene.py [--copies 1 10 50] [--agents 623]
The sample district's sensor mesh repeated `copies` times stands in for larger cities (real LOD2 wards have
millions of triangles); `agents` random car-sized boxes. Compares rebuilding one Embree scene of city + agents
every frame (before) with `RayCaster.layered` (the city's scene built once, only the agents' per frame), and
the cost of a 65k-ray lidar-like cast through each.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from occworld_tokyo import labels as L
from occworld_tokyo.citymodel.mesh import CityMesh
from occworld_tokyo.citymodel.sample_city import load_sample_city
from occworld_tokyo.sensors import RayCaster
from occworld_tokyo.sensors.scene import sensor_mesh
from occworld_tokyo.sensors.synthetic import Box, box_city
from occworld_tokyo.world import build_voxel_world


def best_of(fn, repeats: int = 3) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, nargs="+", default=[1, 10, 50])
    ap.add_argument("--agents", type=int, default=623)
    args = ap.parse_args()
    mesh = load_sample_city()
    city1 = sensor_mesh(mesh, build_voxel_world(mesh, progress=False))
    rng = np.random.default_rng(0)
    corners = rng.uniform(-300, 300, (args.agents, 2))
    agents = box_city([Box((x, y, 40.0), (x + 4.5, y + 1.8, 41.6), L.VEHICLE) for x, y in corners],
                      ground_half_size=None)
    origins = np.column_stack([rng.uniform(-200, 200, (65536, 2)), np.full(65536, 45.0)])
    dirs = rng.normal(size=(65536, 3)).astype(np.float32)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    print(f"{'city triangles':>14s} | {'rebuild city+agents':>19s} | {'layered build':>13s} | "
          f"{'cast 65k rebuilt':>16s} | {'cast 65k layered':>16s}")
    for k in args.copies:
        city = CityMesh.concatenate([city1] * k) if k > 1 else city1
        base = RayCaster(city)
        t_full, whole = best_of(lambda: RayCaster(CityMesh.concatenate([city, agents])))
        t_layer, layered = best_of(lambda: RayCaster.layered(base, agents))
        t_cw, _ = best_of(lambda: whole.cast(origins, dirs, max_distance=120.0, normalized=True))
        t_cl, _ = best_of(lambda: layered.cast(origins, dirs, max_distance=120.0, normalized=True))
        print(f"{city.n_triangles:14,d} | {1e3 * t_full:16.1f} ms | {1e3 * t_layer:10.1f} ms | "
              f"{1e3 * t_cw:13.1f} ms | {1e3 * t_cl:13.1f} ms", flush=True)


if __name__ == "__main__":
    main()
