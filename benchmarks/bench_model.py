"""Forward+backward(+optimizer step) time and peak memory of the model at full size, per batch size.

    python benchmarks/bench_model.py                       # Tokyo config, CPU, batch 1 and 2, both stages
    python benchmarks/bench_model.py --device cuda --amp   # on a GPU: fp16 autocast + GradScaler
    python benchmarks/bench_model.py --config config/occworld_nuscenes.py --parts world

Two steps are measured separately, as the two training stages run them:
* tokenizer: VAERes2D.forward_train on (B, vae_frames, X, Y, Z) + backward + AdamW step (all tokenizer weights);
* world model: TransVQVAE.forward_train on (B, history+future, X, Y, Z) and 13-d poses + backward + AdamW step
  over trainable_parameters() (the config's freeze flags; the Tokyo default freezes the tokenizer);
* world_codes: the same step from cached code indices (forward_train_codes), i.e. without the tokenizer encode.

Each (stage, batch size) runs in its own subprocess so that peak memory is its own: on CPU the peak resident set
size during the steps (VmHWM, reset after setup via /proc/self/clear_refs) minus the resident size after building
the model, the optimizer and the batch; on CUDA torch.cuda.max_memory_allocated. The synthetic scene is 95 % free with every class present (the worst case for
Lovasz-softmax, which loops over present classes).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) so that setup does not count (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _synthetic_occ(b: int, f: int, grid: tuple[int, int, int], num_classes: int, free: int, seed: int):
    import torch
    g = torch.Generator().manual_seed(seed)
    occ = torch.full((b, f, *grid), free, dtype=torch.long)
    mask = torch.rand(b, f, *grid, generator=g) < 0.05
    occ[mask] = torch.randint(0, num_classes, (int(mask.sum()),), generator=g)
    return occ


def child(args: argparse.Namespace) -> dict:
    import torch

    # as the trainer does (occworld_tokyo.training): flush denormals before torch starts its thread pool;
    # tiny AdamW second moments and saturated softmax tails otherwise make CPU steps many times slower
    flushed = torch.set_flush_denormal(not args.keep_denormals) and not args.keep_denormals

    from occworld_tokyo.config import load_config
    from occworld_tokyo.model import build_model

    torch.manual_seed(0)
    device = torch.device(args.device)
    cfg = load_config(args.config)["model"]
    if args.part == "tokenizer":
        model = build_model({**cfg, "type": "VAERes2D"}).to(device)
        params = list(model.parameters())
        frames = args.vae_frames
    else:
        model = build_model(cfg).to(device)
        params = model.trainable_parameters()
        frames = model.history_frames + model.future_frames
    vae = model if args.part == "tokenizer" else model.vae
    step_fn = {"tokenizer": lambda: model.forward_train(occ),
               "world": lambda: model.forward_train(occ, poses),
               "world_codes": lambda: model.forward_train_codes(codes, poses)}[args.part]
    model.train()
    occ = _synthetic_occ(args.batch, frames, vae.grid_size, vae.num_classes, vae.free_index, 0).to(device)
    poses = torch.randn(args.batch, frames, cfg["pose_encoder"]["in_channels"]).to(device)
    codes = None
    if args.part == "world_codes":  # tokens cached once per frame, as a frozen tokenizer allows
        with torch.no_grad():
            codes = vae.encode(occ)[1]
        del occ
    opt = torch.optim.AdamW(params, lr=1e-4)
    use_amp = args.amp
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and amp_dtype == torch.float16)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    import gc
    gc.collect()
    base_rss = _status_mib("VmRSS")
    peak_reset = _reset_peak_rss()

    times = []
    for step in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            out = step_fn()
        opt.zero_grad(set_to_none=True)
        scaler.scale(out["loss"]).backward()
        scaler.step(opt)
        scaler.update()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - t0)
    encode_s = None
    if args.part == "world" and model.freeze_vae:  # the frozen tokenizer's share of the step: encoding all frames without grad
        with torch.no_grad(), torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            t0 = time.perf_counter()
            model.vae.encode(occ)
            if device.type == "cuda":
                torch.cuda.synchronize()
            encode_s = time.perf_counter() - t0
    result = {
        "encode_s": encode_s,
        "part": args.part, "batch": args.batch, "frames": frames, "device": str(device),
        "amp": (str(amp_dtype).replace("torch.", "") if use_amp else "fp32"),
        "step_s_mean": statistics.mean(times), "step_s_min": min(times),
        "trainable_params": sum(p.numel() for p in params),
        "flush_denormal": bool(flushed), "loss": float(out["loss"]), "threads": torch.get_num_threads(), "loadavg_1min": os.getloadavg()[0],
    }
    if device.type == "cuda":
        result["peak_mem_mib"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = _status_mib("VmHWM") if peak_reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result["peak_mem_mib"] = peak - base_rss
        result["peak_rss_mib"] = peak
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "config/_base_/model_tokyo.py"))
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--parts", nargs="+", default=["tokenizer", "world"], choices=["tokenizer", "world", "world_codes"],
                        help="world_codes: TransVQVAE.forward_train_codes on cached codes (no tokenizer encode)")
    parser.add_argument("--vae-frames", type=int, default=1, help="frames per sample in the tokenizer step")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true", help="autocast: fp16 + GradScaler on CUDA, bf16 on CPU")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--json-out", help="also write the results here")
    parser.add_argument("--keep-denormals", action="store_true", help="do not flush denormals (for comparison)")
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.part:  # child process: one measurement, JSON on the last stdout line
        print(json.dumps(child(args)))
        return 0

    results = []
    for part in args.parts:
        for batch in args.batch_sizes:
            cmd = [sys.executable, __file__, "--config", args.config, "--device", args.device,
                   "--vae-frames", str(args.vae_frames), "--warmup", str(args.warmup), "--steps", str(args.steps),
                   "--part", part, "--batch", str(batch)] + (["--amp"] if args.amp else []) \
                + (["--keep-denormals"] if args.keep_denormals else [])
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
            if proc.returncode != 0:
                print(f"{part} batch {batch}: FAILED\n{proc.stderr[-2000:]}", file=sys.stderr)
                results.append({"part": part, "batch": batch, "error": proc.stderr.strip().splitlines()[-1]})
                continue
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(res)
            print(f"{part:<9} batch {batch} frames {res['frames']:>2} {res['device']} {res['amp']}: "
                  f"{res['step_s_mean']:.2f} s/step (min {res['step_s_min']:.2f}), peak +{res['peak_mem_mib']:.0f} MiB"
                  f", trainable {res['trainable_params']:,}"
                  + (f", of which tokenizer encode {res['encode_s']:.2f} s" if res.get("encode_s") else "")
                  + f" [load {res['loadavg_1min']:.1f}{', denormals kept' if not res['flush_denormal'] else ''}]",
                  flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
