"""`occworld-tokyo demo`: the main job, end to end on the built-in sample district (or PLATEAU files).

    occworld-tokyo demo [--out outputs/demo] [--sessions 8] [--frames 60] [--tokenizer-epochs 6] [--world-epochs 6]

1. generate drone and rover sessions (occupancy, poses, lidar, camera, masks, moving agents) and validate them;
2. stage 1: train the scene tokenizer (config/tiny_vqvae.py: a CPU-sized VQ-VAE on the central 25.6 m at 0.4 m);
3. stage 2: train the plan-conditioned world model with the tokenizer frozen (config/tiny_finetune.py), evaluated
   with and without the plan against the copy-last-frame and ego-motion-warp baselines (mIoU/IoU at 1/2/3 s over
   all and camera-visible voxels, VPQ at IoU 0.5 and 0.2, planning L2 and collisions);
4. forecast a validation session with the trained model, on its own and along the recorded path;
5. write `<out>/report/report.md` with pictures and `<out>/report/metrics.json`.
The same commands a user runs by hand (`scripts/plateau_to_occworld.py`, `train.py`) do the work.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from occworld_tokyo.config import CONFIG_DIR  # the packaged configs


def _stage(title: str) -> float:
    print(f"\n=== {title} ===", flush=True)
    return time.perf_counter()


def run_demo(out: Path, sessions: int, frames: int, tokenizer_epochs: int, world_epochs: int, workers: int,
             seed: int, inputs: list[str] | None, eval_samples: int) -> Path:
    from occworld_tokyo.config import load_config, with_defaults
    from occworld_tokyo.dataset.sessions import find_sessions
    from occworld_tokyo.dataset.windows import split_sessions
    from occworld_tokyo.reports.forecast import forecast, load_trained, write_forecast
    from occworld_tokyo.reports.report import write_report
    from occworld_tokyo.sessions import GenerationSpec, generate_sessions
    from occworld_tokyo.sessions.validate import format_summary, validate
    from occworld_tokyo.training.cli import main as train_main

    timings: dict[str, float] = {}
    data, ckpt = out / "data", out / "checkpoints"
    t = _stage(f"1/5 data: {sessions} sessions x {frames} frames from "
               f"{'the built-in sample district' if not inputs else ', '.join(inputs)}")
    gen = generate_sessions(data, inputs, spec=GenerationSpec(frames=frames, sessions=sessions, seed=seed),
                            workers=workers)
    print(gen.summary())
    checks, problems = validate(data)
    validation = format_summary(checks, problems)
    print(validation)
    if problems or any(c.problems for c in checks):
        raise RuntimeError("the generated data did not validate (see above)")
    timings["data"] = time.perf_counter() - t

    common = ["--cfg-options", f"data_root={data}", f"evaluation.max_samples={eval_samples}"]
    t = _stage(f"2/5 stage 1: scene tokenizer, {tokenizer_epochs} epochs")
    tok_cfg = CONFIG_DIR / "tiny_vqvae.py"
    if train_main(["--config", str(tok_cfg), "--work-dir", str(ckpt / "tokenizer"), "--epochs", str(tokenizer_epochs),
                   "--seed", str(seed), *common, f"evaluation.interval={tokenizer_epochs}"]) != 0:
        raise RuntimeError("stage 1 (tokenizer) failed; see the log above")
    timings["tokenizer"] = time.perf_counter() - t

    t = _stage(f"3/5 stage 2: world model, {world_epochs} epochs, tokenizer frozen")
    wm_cfg = CONFIG_DIR / "tiny_finetune.py"
    if train_main(["--config", str(wm_cfg), "--work-dir", str(ckpt), "--epochs", str(world_epochs),
                   "--seed", str(seed), *common, f"evaluation.interval={world_epochs}"]) != 0:
        raise RuntimeError("stage 2 (world model) failed; see the log above")
    timings["world_model"] = time.perf_counter() - t

    t = _stage("4/5 forecast a validation session")
    cfg = with_defaults(load_config(wm_cfg))
    split = split_sessions(find_sessions(data), float(cfg["data"]["val_fraction"]), int(cfg["data"]["split_seed"]),
                           cfg["history_frames"] + cfg["future_frames"])
    val_session = split.val[0].session.path
    model, model_cfg = load_trained(ckpt / "best.pth")
    result = forecast(model, model_cfg, val_session, start=split.val[0].start)
    forecast_dir = out / "forecast"
    write_forecast(result, forecast_dir, str(ckpt / "best.pth"))
    print(f"forecast of {val_session.name} -> {forecast_dir}")
    forecast_plan_dir = None
    if model.plan_conditioned:
        forecast_plan_dir = out / "forecast_plan"
        planned = forecast(model, model_cfg, val_session, start=split.val[0].start, plan="recorded")
        write_forecast(planned, forecast_plan_dir, str(ckpt / "best.pth"))
        print(f"forecast of {val_session.name} along its recorded path -> {forecast_plan_dir}")
    timings["forecast"] = time.perf_counter() - t

    t = _stage("5/5 report")
    grid = result["grid"]
    setup = (f"{grid.x_range[1] - grid.x_range[0]:g} m x {grid.y_range[1] - grid.y_range[0]:g} m around the agent "
             f"at {grid.voxel_size[0]:g} m, {grid.shape[2]} levels of {grid.voxel_size[2]:g} m, grid "
             f"{'x'.join(map(str, grid.shape))}; {model.history_frames} history and {model.future_frames} future "
             f"frames; {'plan-conditioned' if model.plan_conditioned else 'unconditioned'} world model")
    report = write_report(out / "report", data=data, checkpoints=ckpt, forecast_dir=forecast_dir,
                          validation=validation, generation=gen.summary(), split_note=split.note, timings=timings,
                          setup_note=setup, forecast_plan_dir=forecast_plan_dir)
    timings["report"] = time.perf_counter() - t
    print(f"report: {report}")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="occworld-tokyo demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("outputs/demo"), help="output folder (default: %(default)s)")
    p.add_argument("--input", nargs="+", default=None, help="PLATEAU files instead of the built-in sample district")
    p.add_argument("--sessions", type=int, default=8)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--tokenizer-epochs", type=int, default=6)
    p.add_argument("--world-epochs", type=int, default=6)
    p.add_argument("--eval-samples", type=int, default=52,
                   help="validation windows per evaluation (default: every other window of the 2 val sessions)")
    p.add_argument("--workers", type=int, default=2, help="data generation processes")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    try:
        run_demo(args.out, args.sessions, args.frames, args.tokenizer_epochs, args.world_epochs, args.workers,
                 args.seed, args.input, args.eval_samples)
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"\nmain job done in {(time.perf_counter() - t0) / 60:.1f} min")
    return 0
