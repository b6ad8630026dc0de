"""Stage-2 training step on CPU with and without the frozen-tokenizer code cache (training/code_cache.py).

    python benchmarks/bench_code_cache.py [--config config/tiny_finetune.py] [--steps 20] [--batch 2]

Builds the config's world model (random weights: the step cost does not depend on them), marks the tokenizer
trained, and times forward + backward + AdamW step on random occupancy windows of the config's size: once
encoding every frame of the window through the frozen tokenizer (what every step did before the cache), once from
precomputed codes (every step after a frame's first use). Prints median seconds per step and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from occworld_tokyo.config import load_config
from occworld_tokyo.model import build_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="config/tiny_finetune.py")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=2)
    args = p.parse_args()
    cfg = load_config(args.config)
    torch.manual_seed(0)
    model = build_model(cfg["model"])
    model.vae.tokenizer_grid = model.vae.grid_signature()
    model.train()
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4)
    f = cfg["history_frames"] + cfg["future_frames"]
    occ = torch.randint(0, 14, (args.batch, f, *model.vae.grid_size))
    poses = torch.randn(args.batch, f, 13) * 0.1
    with torch.no_grad():
        _, codes = model.vae.encode(occ)
    times = {}
    for name, kwargs in (("encode every frame", {}), ("cached codes", {"codes": codes})):
        ts = []
        for i in range(args.steps + 2):
            t0 = time.perf_counter()
            out = model.forward_train(occ, poses, **kwargs)
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
            if i >= 2:
                ts.append(time.perf_counter() - t0)
        times[name] = statistics.median(ts)
        print(f"{name:20s} {times[name]:.3f} s/step ({args.batch} windows of {f} frames, grid "
              f"{'x'.join(map(str, model.vae.grid_size))}, {torch.get_num_threads()} threads)")
    print(f"speed-up {times['encode every frame'] / times['cached codes']:.2f}x")


if __name__ == "__main__":
    main()
