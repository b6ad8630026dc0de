"""Logging of a training run: console + `train_<timestamp>.log`, the per-window log line and TensorBoard
scalars (`train/*`), the evaluation summary (`val/*`, pictures) and the metrics JSON files.

Units: samples/s counts windows (history + future frames) over all processes; memory in MiB (CUDA peak or the
process's max RSS); ETA in h:mm:ss from the last window's step time.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from occworld_tokyo.training.distributed import DistEnv

LOG = logging.getLogger("occworld_tokyo.train")


def memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def setup_logging(work_dir: Path, env: DistEnv) -> Path | None:
    """Console + `train_<timestamp>.log` (rank 0). Messages go through tqdm.write so the bar stays intact."""
    LOG.handlers.clear()
    LOG.setLevel(logging.INFO if env.is_main else logging.WARNING)
    LOG.propagate = False
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")

    class _TqdmHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            tqdm.write(self.format(record), file=sys.stderr)

    console = _TqdmHandler()
    console.setFormatter(fmt)
    LOG.addHandler(console)
    if not env.is_main:
        return None
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / f"train_{datetime.now():%Y%m%d_%H%M%S}.log"
    fh = logging.FileHandler(path)
    fh.setFormatter(fmt)
    LOG.addHandler(fh)
    return path


_SUMMED = {"codes_restarted"}  # logged as the window's total, not its mean


def log_window(writer, window: dict, lr: float, t_window: float, n_window: int, data_wait: float,
                step_time: float, env: DistEnv, state, iters_per_epoch: int, total_iters: int,
                bar) -> None:
    count = max(1.0, window.pop("_count", 1.0))
    means = {k: v if k in _SUMMED else v / count for k, v in window.items()}
    dt = max(1e-9, time.perf_counter() - t_window)
    sps = n_window / dt
    mem = memory_mb(env.device)
    wait_frac = data_wait / max(1e-9, data_wait + step_time)
    eta_s = (total_iters - state.global_iter) * dt / max(1.0, count)
    if writer is not None:
        for k, v in means.items():
            writer.add_scalar(f"train/{k}", v, state.global_iter)
        writer.add_scalar("train/lr", lr, state.global_iter)
        writer.add_scalar("train/samples_per_s", sps, state.global_iter)
        writer.add_scalar("train/memory_mb", mem, state.global_iter)
        writer.add_scalar("train/data_wait_fraction", wait_frac, state.global_iter)
    bar.set_postfix(loss=f"{means.get('loss', float('nan')):.4f}", lr=f"{lr:.2e}")
    parts = " ".join(f"{k} {v:.4f}" for k, v in means.items())
    LOG.info(f"epoch {state.epoch + 1} it {state.iter_in_epoch}/{iters_per_epoch} step {state.global_iter}/"
             f"{total_iters} | {parts} | lr {lr:.3e} | {sps:.2f} samples/s | data wait {100 * wait_frac:.0f}% | "
             f"mem {mem:.0f} MB | ETA {_hms(eta_s)}")


def _hms(seconds: float) -> str:
    s = int(max(0, seconds))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def write_metrics(work_dir: Path, name: str, metrics: dict) -> Path:
    out = work_dir / "metrics" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(metrics, indent=2, default=_json_default) + "\n")
    os.replace(tmp, out)
    return out


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def format_metrics(m: dict) -> str:
    """A few readable lines: losses, tokenizer reconstruction, forecast vs baselines (all voxels, then the
    visible ones), planning."""
    lines = ["  " + " ".join(f"{k} {v:.5g}" for k, v in m.items() if k.startswith("val_") and isinstance(v, float))]
    for key, frames, where in _sets(m, ("recon", "recon_future")):
        r = m[key]
        lines.append(f"  tokenizer reconstruction ({'val' if frames == 'recon' else 'future'} frames, {where}): "
                     f"mIoU {_pct(r.get('miou'))} IoU {_pct(r.get('iou'))}")
    if "codebook" in m:
        c = m["codebook"]
        lines.append(f"  codebook: {c['codes_used']:.0f} of {c['n_e']} codes used on the val frames, "
                     f"perplexity {c['code_perplexity']:.1f}")
    for key, _, where in _sets(m, ("forecast",)):
        lines.append(f"  forecast, {where}:")
        vpqs = m.get(key.replace("forecast", "vpq"), {})
        for method, f in m[key].items():
            lines.append(f"    {method:16s} mIoU 1/2/3s {_pct(f.get('miou_1s'))}/{_pct(f.get('miou_2s'))}/"
                         f"{_pct(f.get('miou_3s'))} avg {_pct(f.get('miou_avg'))} | IoU avg {_pct(f.get('iou_avg'))}"
                         f" | VPQ {_vpq_text(vpqs.get(method, {}))}")
    for method, p in m.get("planning", {}).items():
        lines.append(f"  plan {method:18s} L2 1/2/3s {p.get('l2_1s', float('nan')):.2f}/"
                     f"{p.get('l2_2s', float('nan')):.2f}/{p.get('l2_3s', float('nan')):.2f} m | collision "
                     f"{_pct(p.get('collision_rate'))}")
    for note in m.get("notes", []):
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def _sets(m: dict, keys: tuple[str, ...]):
    """(metrics key, base key, words) of each base key's all-voxel and visible results present in m."""
    visible = f"{m.get('visibility') or 'mask'}-visible voxels"
    for base in keys:
        for key, where in ((base, "all voxels"), (f"{base}_visible", visible)):
            if m.get(key):
                yield key, base, where


def _vpq_text(v: dict) -> str:
    """'IoU>0.5 12.3 / IoU>0.2 20.1' from a VPQMetric result (the single `vpq` of an older one)."""
    by = v.get("by_threshold")
    if not by:
        return _pct(v.get("vpq"))
    return " / ".join(f"IoU>{t} {_pct(r.get('vpq'))}" for t, r in by.items())


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}"


def tensorboard_eval(writer, metrics: dict, example: dict, step: int) -> None:
    if writer is None:
        return
    from occworld_tokyo.reports.figures import side_by_side

    for k, v in metrics.items():
        if k.startswith("val_") and isinstance(v, float):
            writer.add_scalar(f"val/{k[4:]}", v, step)
    for key in ("recon", "recon_visible", "recon_future", "recon_future_visible"):
        for name in ("miou", "iou"):
            v = metrics.get(key, {}).get(name)
            if v is not None:
                writer.add_scalar(f"val/{key}_{name}", v, step)
    for k, v in (metrics.get("summary") or {}).items():
        if v is not None:
            writer.add_scalar(f"val/{k}", v, step)
    for k in ("codes_used", "code_perplexity"):
        if k in metrics.get("codebook", {}):
            writer.add_scalar(f"val/{k}", metrics["codebook"][k], step)
    if example:
        gt, pred = example["gt"], example["pred"]
        for t in range(gt.shape[0]):
            writer.add_image(f"val_bev/step{t + 1}_gt_vs_pred", side_by_side(gt[t], pred[t], view="bev"), step,
                             dataformats="HWC")
            writer.add_image(f"val_side/step{t + 1}_gt_vs_pred", side_by_side(gt[t], pred[t], view="side"), step,
                             dataformats="HWC")


def open_writer(work_dir: Path, env: DistEnv):
    """TensorBoard writer on `<work-dir>/logs` (rank 0), else None."""
    if not env.is_main:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(work_dir / "logs"))
