"""Training step rate of the main job's tokenizer (config/tiny_vqvae.py, batch 2) under CPU load, per thread setting.

Why: on a busy 2-core machine the main job's step rate fell from 6 to 0.1 samples/s. Each setting runs in a fresh
process (OpenMP reads OMP_WAIT_POLICY when torch loads) while `--load K` busy-looping processes compete for the
cores; settings are interleaved over `--repeats` rounds so a change of the machine's own load hits all alike.

    python benchmarks/bench_threads.py --steps 15 --load 2 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETTINGS = {  # name: (environment, torch threads or None = torch's default)
    "default (torch threads = cores, OpenMP spins)": ({}, None),
    "OMP_WAIT_POLICY=PASSIVE": ({"OMP_WAIT_POLICY": "PASSIVE"}, None),
    "1 torch thread": ({}, 1),
    "project default (training.threads)": ({}, "project"),
}

CHILD = r"""
import json, os, sys, time
sys.path.insert(0, {root!r})
threads = {threads!r}
if threads == "project":
    from occworld_tokyo.threads import configure_threads
    note = configure_threads(workers={workers})
import torch
if threads not in (None, "project"):
    torch.set_num_threads(threads)
torch.set_flush_denormal(True)
from occworld_tokyo.config import load_config
from occworld_tokyo.model import build_model
cfg = load_config(os.path.join({root!r}, "config", "tiny_vqvae.py"))
torch.manual_seed(0)
model = build_model(cfg["model"])
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
X, Y, Z = cfg["model"]["vae"]["grid_size"]
g = torch.Generator().manual_seed(0)
occ = torch.randint(0, 14, (2, 1, X, Y, Z), generator=g) * (torch.rand(2, 1, X, Y, Z, generator=g) < 0.1)
times = []
for i in range({steps} + 2):
    t = time.perf_counter()
    out = model.forward_train(occ)
    opt.zero_grad(); out["loss"].backward(); opt.step()
    times.append(time.perf_counter() - t)
t = times[2:]
print(json.dumps({{"samples_per_s": 2 * len(t) / sum(t), "worst_step_s": max(t), "threads": torch.get_num_threads(),
                  "cpu_s": time.process_time()}}))
"""


def _spin(stop_at: float) -> None:
    while time.time() < stop_at:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--load", type=int, default=2, help="busy-looping processes beside the run")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1, help="data-loader workers the project setting plans for")
    args = ap.parse_args()
    results: dict[str, list[dict]] = {name: [] for name in SETTINGS}
    for _ in range(args.repeats):
        for name, (env, threads) in SETTINGS.items():
            load = [mp.Process(target=_spin, args=(time.time() + 600,), daemon=True) for _ in range(args.load)]
            for p in load:
                p.start()
            try:
                code = CHILD.format(root=str(ROOT), threads=threads, steps=args.steps, workers=args.workers)
                t0 = time.perf_counter()
                proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                      env={**{k: v for k, v in os.environ.items()
                                              if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}, **env})
                wall = time.perf_counter() - t0
            finally:
                for p in load:
                    p.terminate()
            if proc.returncode:
                raise SystemExit(proc.stderr[-2000:])
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            r["wall_s"] = wall
            results[name].append(r)
            print(f"{name:48s} {r['samples_per_s']:6.2f} samples/s  worst step {r['worst_step_s']:5.2f} s  "
                  f"cpu {r['cpu_s']:5.1f} s  wall {wall:5.1f} s  threads {r['threads']}", flush=True)
    print(f"\nload: {args.load} busy process(es) on {os.cpu_count()} cores; load average now {os.getloadavg()}")
    for name, rs in results.items():
        sps = sorted(r["samples_per_s"] for r in rs)
        print(f"{name:48s} median {sps[len(sps) // 2]:6.2f} samples/s (runs: {', '.join(f'{v:.2f}' for v in sps)}), "
              f"cpu {sum(r['cpu_s'] for r in rs) / len(rs):.1f} s")


if __name__ == "__main__":
    main()
