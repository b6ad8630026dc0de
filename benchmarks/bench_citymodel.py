"""Benchmark of the city-model readers: parse MB/s and triangles/s.

Run:  python benchmarks/bench_citymodel.py [--repeat 5]

Measures load_city on each real PLATEAU file in ../shared/data/plateau (when present), on all of them
together, on the sample district (600 m and 1 km: generation and loading), and on an OBJ export of the
1 km sample's buildings (EPSG:6677). Prints a Markdown table (median of --repeat runs).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from pyproj import Transformer

from occworld_tokyo.citymodel import load_city
from occworld_tokyo.citymodel.crs import local_to_lonlat
from occworld_tokyo.citymodel.sample_city import write_sample_district

PLATEAU = Path(__file__).resolve().parents[2] / "shared" / "data" / "plateau"


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def size_mb(paths: list[Path]) -> float:
    return sum(p.stat().st_size for p in paths) / 1e6


def row(name: str, mb: float, seconds: float, mesh) -> str:
    return (f"| {name} | {mb:.2f} | {mesh.n_objects} | {mesh.n_triangles} | {seconds * 1000:.0f} | "
            f"{mb / seconds:.1f} | {mesh.n_triangles / seconds / 1e3:.0f} |")


def write_obj_export(mesh, path: Path) -> Path:
    """The mesh's buildings as a PLATEAU-style EPSG:6677 OBJ (v X=north Y=east Z, one 'o' per object)."""
    pts = mesh.triangles.reshape(-1, 3).astype(np.float64)
    lon, lat = local_to_lonlat(pts[:, 0], pts[:, 1], mesh.origin.lat, mesh.origin.lon)
    north, east = Transformer.from_crs("EPSG:6668", "EPSG:6677").transform(lat, lon)
    lines = [f"v {a:.3f} {b:.3f} {c:.3f}" for a, b, c in zip(north, east, pts[:, 2])]
    order = np.argsort(mesh.tri_object, kind="stable")
    cur = -1
    for t in order:
        if mesh.tri_object[t] != cur:
            cur = mesh.tri_object[t]
            lines.append(f"o {mesh.object_gml_id[cur]}")
        lines.append(f"f {3 * t + 1} {3 * t + 2} {3 * t + 3}")
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"median of {args.repeat} runs\n")
    print("| input | MB | objects | triangles | load ms | MB/s | k triangles/s |")
    print("|---|---|---|---|---|---|---|")
    if PLATEAU.is_dir():
        files = sorted(PLATEAU.glob("*.gml"))
        for f in files:
            s, mesh = timed(lambda f=f: load_city(f, progress=False), args.repeat)
            print(row(f.name, size_mb([f]), s, mesh))
        s, mesh = timed(lambda: load_city(PLATEAU, progress=False), args.repeat)
        print(row("all 4 real files (folder)", size_mb(files), s, mesh))
    else:
        print(f"| (real PLATEAU files not found at {PLATEAU}) | | | | | | |")
    with tempfile.TemporaryDirectory() as tmp:
        for size in (600.0, 1000.0):
            out = Path(tmp) / f"d{size:g}"
            gen_s, files = timed(lambda out=out, size=size: write_sample_district(out, seed=0, size_m=size), 1)
            s, mesh = timed(lambda out=out: load_city(out / "udx", progress=False), args.repeat)
            print(row(f"sample district {size:g} m (generated in {gen_s:.2f} s)", size_mb(files), s, mesh))
            bldg = next(f for f in files if "_bldg_" in f.name)
            s, mesh_b = timed(lambda bldg=bldg: load_city(bldg, progress=False), args.repeat)
            print(row(f"sample {size:g} m, bldg file only", size_mb([bldg]), s, mesh_b))
        obj = write_obj_export(mesh_b, Path(tmp) / "53394526_bldg_6677.obj")
        s, mesh_o = timed(lambda: load_city(obj, progress=False), args.repeat)
        print(row("OBJ export (6677) of the 1 km sample's buildings", size_mb([obj]), s, mesh_o))


if __name__ == "__main__":
    main()
