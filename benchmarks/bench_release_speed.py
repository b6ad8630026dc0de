"""This model against the released OccWorld, timed side by side in one process on the same weights and inputs.

    # a checkout of https://github.com/wzzheng/OccWorld in a scratch folder outside this project (never commit it)
    pip install einops                    # the release's only extra need here; mmengine is replaced by a shim
    python benchmarks/bench_release_speed.py --release /tmp/occworld_release --repeats 3

Two steps at the release's configuration (config/train_occworld.py of the release, read from the checkout):
* tokenizer: VAERes2D forward on 2 frames of 200 x 200 x 16 labels, CE over the logits + VQ embed loss, backward;
* transformer: PlanUAutoRegTransformer forward on 15 frames of 128 x 50 x 50 tokens (+ pose tokens), a mean
  square of both outputs as the loss, backward.
Both models get the release model's weights (this model loads them by name), the outputs are checked equal
first, then the two are timed alternately (median of --repeats) with the same thread count, in wall and in CPU
seconds (the process's, all threads: steadier than wall time on a shared machine). `--compile` also
times this model under torch.compile. Prints one JSON line per step with the times and the ratio ours/release.

The release imports mmengine only for its registry and BaseModule; a small stand-in (below) provides those, so no
release code is changed or copied. Only model/VAE/*.py, model/transformer/{PlanUtransformer,modules}.py are
imported (model/__init__.py would pull in nuScenes tooling).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import runpy
import statistics
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _install_mmengine_shim() -> None:
    """`mmengine.registry.MODELS` (register_module / build by 'type') and `mmengine.model.BaseModule`."""
    import torch.nn as nn

    class Registry(dict):
        def register_module(self):
            def deco(cls):
                self[cls.__name__] = cls
                return cls
            return deco

        def build(self, cfg):
            cfg = dict(cfg)
            return self[cfg.pop("type")](**cfg)

    class BaseModule(nn.Module):
        def __init__(self, init_cfg=None):
            super().__init__()

    mm = types.ModuleType("mmengine")
    reg, model = types.ModuleType("mmengine.registry"), types.ModuleType("mmengine.model")
    reg.MODELS, model.BaseModule = Registry(), BaseModule
    mm.registry, mm.model = reg, model
    sys.modules.update({"mmengine": mm, "mmengine.registry": reg, "mmengine.model": model})


def _load_release(root: Path) -> dict:
    """Import the release's tokenizer and transformer modules from the checkout; returns its `model` config."""
    _install_mmengine_shim()
    pkg = types.ModuleType("release_model")
    pkg.__path__ = [str(root / "model")]
    sys.modules["release_model"] = pkg
    for sub in ("VAE", "transformer"):
        sp = types.ModuleType(f"release_model.{sub}")
        sp.__path__ = [str(root / "model" / sub)]
        sys.modules[f"release_model.{sub}"] = sp
    for name in ("VAE.quantizer", "VAE.vae_2d_resnet", "transformer.modules", "transformer.PlanUtransformer"):
        spec = importlib.util.spec_from_file_location(f"release_model.{name}",
                                                      root / "model" / (name.replace(".", "/") + ".py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
    return runpy.run_path(str(root / "config" / "train_occworld.py"))["model"]


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads): on a shared machine the CPU time is the steadier
    measure of the work done (OMP_WAIT_POLICY=PASSIVE keeps idle threads from spinning it up)."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", required=True, type=Path, help="checkout of wzzheng/OccWorld")
    parser.add_argument("--parts", nargs="+", default=["tokenizer", "transformer"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokenizer-frames", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also time this model under torch.compile")
    args = parser.parse_args(argv)

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: idle threads sleep, as train.py does
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    from occworld_tokyo.model import build_model, model_config_from_release
    from occworld_tokyo.model.losses import occupancy_ce

    release_cfg = _load_release(args.release)
    registry = sys.modules["mmengine.registry"].MODELS
    num_frames = release_cfg["num_frames"]
    results = []
    for part in args.parts:
        torch.manual_seed(0)
        if part == "tokenizer":
            theirs = registry.build(release_cfg["vae"])
            ours = build_model(model_config_from_release(release_cfg["vae"] | {"type": "VAERes2D"}, 1, 0))
            ours.load_state_dict(theirs.state_dict(), strict=True)
            g = torch.Generator().manual_seed(1)
            x = torch.full((1, args.tokenizer_frames, 200, 200, 16), 17, dtype=torch.long)
            occupied = torch.rand(x.shape, generator=g) < 0.1
            x[occupied] = torch.randint(0, 17, (int(occupied.sum()),), generator=g)

            def run_theirs():
                out = theirs(x)
                loss = F.cross_entropy(out["logits"].permute(0, 5, 1, 2, 3, 4), x) + out["embed_loss"]
                loss.backward()
                return out["logits"].detach()

            def run_ours(model=ours):
                z_q, embed_loss, _ = model._encode(x)
                logits = model.decode_latents(z_q)
                loss = occupancy_ce(logits, x.flatten(0, 1)) + embed_loss
                loss.backward()
                return logits.detach().permute(0, 2, 3, 4, 1).reshape(1, args.tokenizer_frames, 200, 200, 16, -1)
            what = f"VAERes2D fwd+bwd, {args.tokenizer_frames} frames of 200x200x16"
        else:
            theirs = registry.build(release_cfg["transformer"])
            world = build_model(model_config_from_release(release_cfg, num_frames, 1))
            ours = world.transformer
            ours.load_state_dict(theirs.state_dict(), strict=True)
            g = torch.Generator().manual_seed(2)
            C, H, W = release_cfg["transformer"]["img_shape"]
            tokens = torch.randn(1, num_frames, C, H, W, generator=g)
            poses = torch.randn(1, num_frames, C, generator=g)

            def run_theirs():
                logits, pose = theirs(tokens, poses)
                (logits.square().mean() + pose.square().mean()).backward()
                return logits.detach()

            def run_ours(model=ours):
                logits, pose = model(tokens, poses)
                (logits.square().mean() + pose.square().mean()).backward()
                return logits.detach()
            what = f"PlanUAutoRegTransformer fwd+bwd, {num_frames} frames of {C}x{H}x{W}"
        theirs.train()
        ours.train()
        ref, mine = run_theirs(), run_ours()
        max_diff = float((ref - mine).abs().max())
        candidates = {"release": run_theirs, "ours": run_ours}
        if args.compile:
            compiled = torch.compile(ours)
            candidates["ours_compiled"] = (lambda c=compiled: run_ours(c))
            candidates["ours_compiled"]()  # compile outside the timing
        times: dict[str, list[float]] = {k: [] for k in candidates}
        cpu: dict[str, list[float]] = {k: [] for k in candidates}
        for _ in range(args.repeats):
            for name, fn in candidates.items():
                for p in list(theirs.parameters()) + list(ours.parameters()):
                    p.grad = None
                wall, used = _timed(fn)
                times[name].append(wall)
                cpu[name].append(used)
        row = {"part": part, "what": what, "threads": torch.get_num_threads(), "max_abs_diff": max_diff,
               **{f"{k}_s": statistics.median(v) for k, v in times.items()},
               **{f"{k}_cpu_s": statistics.median(v) for k, v in cpu.items()},
               **{f"{k}_all_s": [round(t, 2) for t in v] for k, v in times.items()},
               **{f"{k}_all_cpu_s": [round(t, 2) for t in v] for k, v in cpu.items()},
               "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "loadavg_1min": os.getloadavg()[0]}
        for k in candidates:
            if k != "release":
                row[f"ratio_{k}_to_release"] = row[f"{k}_s"] / row["release_s"]
                row[f"cpu_ratio_{k}_to_release"] = row[f"{k}_cpu_s"] / row["release_cpu_s"]
        results.append(row)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
