"""The main job's report: markdown + PNG figures + one metrics JSON, from what the pipeline wrote to disk.

Reads the session folders (pictures of the data), the training work dirs (`metrics/*.json`, TensorBoard
events for the loss curves) and a forecast folder; writes `report.md`, `metrics.json` and `*.png` beside it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from occworld_tokyo.reports.comparison import (HORIZONS, comparison_json, forecast_tables,  # noqa: E402
                                               pct as _pct, wins_and_losses)
from occworld_tokyo.reports.figures import bev_image, side_view  # noqa: E402
from occworld_tokyo.sessions import layout  # noqa: E402


def latest_metrics(work_dir: Path) -> dict | None:
    """The newest `metrics/epoch_N.json` of a work dir (by epoch number), or None."""
    files = sorted((work_dir / "metrics").glob("epoch_*.json"), key=lambda p: int(p.stem.split("_")[1]))
    return json.loads(files[-1].read_text()) if files else None


def scalar_curves(log_dir: Path, tags: tuple[str, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """TensorBoard scalars (step, value) for the tags present."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    have = set(acc.Tags().get("scalars", []))
    return {t: (np.array([e.step for e in acc.Scalars(t)]), np.array([e.value for e in acc.Scalars(t)]))
            for t in tags if t in have}


def _upscale(img: np.ndarray, size: int = 400) -> Image.Image:
    k = max(1, size // max(img.shape[:2]))
    return Image.fromarray(np.kron(img, np.ones((k, k, 1), np.uint8)))


def data_figures(data: Path, out: Path) -> list[tuple[str, str]]:
    """Camera image, lidar and occupancy pictures of one drone and one rover frame: (caption, file) pairs."""
    figs = []
    for agent in ("drone", "rover"):
        sessions = [s for s in layout.find_sessions(data) if s.name.startswith(agent)]
        if not sessions:
            continue
        s = sessions[0]
        n = json.loads((s / "meta.json").read_text())["n_frames"]
        i = n // 2
        img = layout.image_path(s, i)
        if img.is_file():
            Image.open(img).resize((800, 450)).save(out / f"{agent}_camera.png")
            figs.append((f"{agent} front camera, {s.name} frame {i}", f"{agent}_camera.png"))
        with np.load(layout.occupancy_path(s, i)) as npz:
            occ = npz["occupancy"]
        _upscale(bev_image(occ), 400).save(out / f"{agent}_occupancy_bev.png")
        _upscale(side_view(occ, z_scale=2), 400).save(out / f"{agent}_occupancy_side.png")
        figs.append((f"{agent} occupancy 200x200x121, bird's-eye (X forward up, Y left left)", f"{agent}_occupancy_bev.png"))
        figs.append((f"{agent} occupancy, side view (Z up; 1.25 m levels drawn 2 px)", f"{agent}_occupancy_side.png"))
        lp = layout.lidar_path(s, i)
        if lp.is_file():
            pts = np.load(lp)
            fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
            ax.scatter(pts[:, 1], pts[:, 0], s=0.2, c=pts[:, 2], cmap="viridis")
            ax.set_xlim(40, -40), ax.set_ylim(-40, 40), ax.set_aspect("equal")
            ax.set_xlabel("y left (m)"), ax.set_ylabel("x forward (m)")
            ax.set_title(f"{agent} lidar, {len(pts)} points (colour: height)")
            fig.tight_layout(), fig.savefig(out / f"{agent}_lidar.png"), plt.close(fig)
            figs.append((f"{agent} lidar in the ego grid (80 m x 80 m shown)", f"{agent}_lidar.png"))
    return figs


def loss_figure(checkpoints: Path, out: Path) -> str | None:
    stages = (("stage 1: tokenizer", checkpoints / "tokenizer" / "logs"), ("stage 2: world model", checkpoints / "logs"))
    curves = [(title, scalar_curves(logs, ("train/loss", "val/loss")) if logs.is_dir() else {}) for title, logs in stages]
    if not any(c for _, c in curves):
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), dpi=100)
    for ax, (title, stage_curves) in zip(axes, curves):
        for tag, (x, y) in stage_curves.items():
            ax.plot(x, y, marker="o" if tag == "val/loss" else None, label=tag)
        ax.set_title(title), ax.set_xlabel("step"), ax.set_yscale("log")
        if stage_curves:
            ax.legend()
    fig.tight_layout(), fig.savefig(out / "losses.png"), plt.close(fig)
    return "losses.png"


def results_tables(wm: dict, tok: dict | None) -> tuple[list[str], list[str]]:
    """Markdown tables (forecast of every method over all and visible voxels, planning, reconstruction) and the
    plain-words "where the model wins and loses" lines (reports/comparison.py)."""
    lines = forecast_tables(wm)
    lines += ["Planning: the unconditioned world model's own predicted path beside two baselines (the plan-conditioned "
              "mode is not scored here: its path is the plan it was given).", "",
              "| planning | L2 1 s (m) | 2 s | 3 s | avg | collision rate |", "|---" * 6 + "|"]
    for m, p in wm.get("planning", {}).items():
        lines.append(f"| {m} | " + " | ".join(f"{p.get(f'l2_{h}', float('nan')):.2f}" for h in HORIZONS)
                     + f" | {100 * p.get('collision_rate', float('nan')):.1f} % |")
    vis = f"{wm.get('visibility') or (tok or {}).get('visibility') or 'mask'}-visible"
    rec = [("tokenizer, validation frames (stage 1)", (tok or {}).get("recon"), (tok or {}).get("recon_visible")),
           ("tokenizer, future frames (ceiling of the forecast)", wm.get("recon_future"),
            wm.get("recon_future_visible"))]
    with_vis = any(v for _, _, v in rec)  # older metrics files have no visible reconstruction
    lines += ["", "| reconstruction | mIoU | IoU |" + (f" mIoU, {vis} | IoU, {vis} |" if with_vis else ""),
              "|---" * (5 if with_vis else 3) + "|"]
    lines += [f"| {name} | {_pct(r.get('miou'))} | {_pct(r.get('iou'))} |"
              + (f" {_pct((v or {}).get('miou'))} | {_pct((v or {}).get('iou'))} |" if with_vis else "")
              for name, r, v in rec if r]
    lines += movers_kept(wm.get("recon_future") or (tok or {}).get("recon"))
    book = (tok or {}).get("codebook")
    if book:
        lines += ["", f"Tokenizer codebook on the validation frames: {book['codes_used']:.0f} of {book['n_e']} codes "
                      f"used, perplexity {book['code_perplexity']:.1f} (a handful of codes = a collapsed codebook; "
                      "docs/model.md)."]
    verdict = wins_and_losses(wm) + invented_classes(wm)
    return lines, verdict


def invented_classes(wm: dict) -> list[str]:
    """Classes a method predicts that the ground truth never has (each counts IoU 0 in its mIoU), and, as a
    diagnostic beside the headline, the mIoU over the ground truth's own classes at 1 / 2 / 3 s."""
    rows = []
    for method, fc in wm.get("forecast", {}).items():
        voxels = fc.get("per_class_voxels")
        if not voxels:
            return []  # older metrics files
        invented = [f"{name} ({sum(v['pred'])} voxels)" for name, v in voxels.items()
                    if sum(v["gt"]) == 0 and sum(v["pred"]) > 0]
        by_s = []
        for sec in ("1s", "2s", "3s"):
            if f"miou_{sec}" not in fc:
                continue
            t = fc["steps"].index(round(float(sec[:-1]) / fc["steps_s"][0]) - 1)
            ious = [fc["per_class_iou"][name][t] for name, v in voxels.items() if v["gt"][t] > 0]
            ious = [i for i in ious if i is not None]
            by_s.append(_pct(sum(ious) / len(ious)) if ious else "n/a")
        rows.append(f"| {method} | {', '.join(invented) or 'none'} | {' / '.join(by_s)} |")
    return ["", "Classes a method predicts that the ground truth of these windows never has count IoU 0 in its mIoU "
            "(Occ3D's convention, docs/metrics.md); the baselines copy the ground truth and cannot invent any. "
            "Diagnostic only (the headline is the mIoU above):", "",
            "| method | classes only in the prediction | mIoU over the ground truth's classes, 1 / 2 / 3 s |",
            "|---|---|---|", *rows]


def movers_kept(recon: dict | None) -> list[str]:
    """One line: what the tokenizer keeps of each moving class (IoU, with the voxel counts behind it)."""
    from occworld_tokyo.labels import DYNAMIC_IDS, LABEL_NAMES

    if not recon or "per_class_voxels" not in recon:
        return []
    parts = []
    for name in (LABEL_NAMES[i] for i in DYNAMIC_IDS):
        n = recon["per_class_voxels"].get(name, {})
        if n.get("gt") or n.get("pred"):
            parts.append(f"{name} IoU {_pct(recon['per_class_iou'].get(name))} % ({n.get('gt', 0)} voxels, "
                         f"{n.get('pred', 0)} reconstructed)")
    if not parts:
        return ["", "Moving classes: none in the evaluated frames."]
    return ["", "What the tokenizer keeps of the moving classes (future frames through the tokenizer): "
            + "; ".join(parts) + "."]


def guide_table(wm: dict, tok: dict | None, train_ce: float | None) -> list[str]:
    """The guide's "Expected Metrics" (train loss < 0.01, val loss < 0.05, mIoU > 0.3, VPQ > 0.2) next to this
    run's numbers, with what each maps to here (docs/training.md, "The guide's expected metrics")."""
    val_ce = (tok or {}).get("val_ce")
    fc = wm.get("forecast", {}).get("world_model", {})
    vpq = wm.get("vpq", {})
    rows = [("Train Loss (reconstruction)", "< 0.01", train_ce, 0.01, False,
             "tokenizer per-voxel cross-entropy, last training window"),
            ("Val Loss", "< 0.05", val_ce, 0.05, False, "tokenizer per-voxel cross-entropy, validation frames"),
            ("mIoU", "> 0.3", fc.get("miou_avg"), 0.3, True, "world model forecast, mean of 1 / 2 / 3 s"),
            ("VPQ", "> 0.2", vpq.get("world_model", {}).get("vpq"), 0.2, True,
             f"world model forecast, moving classes (ego-warp baseline: "
             f"{_fmt(vpq.get('ego_warp', {}).get('vpq'))})")]
    plan_fc = wm.get("forecast", {}).get("world_model_plan")
    if plan_fc:
        rows += [("mIoU (plan-conditioned)", "> 0.3", plan_fc.get("miou_avg"), 0.3, True,
                  "world_model_plan forecast, mean of 1 / 2 / 3 s"),
                 ("VPQ (plan-conditioned)", "> 0.2", vpq.get("world_model_plan", {}).get("vpq"), 0.2, True,
                  "world_model_plan forecast, moving classes")]
    lines = ["| guide metric | guide's good value | this run | met | what it is here |", "|---" * 5 + "|"]
    for name, good, value, bound, higher, what in rows:
        met = "n/a" if value is None else ("yes" if (value > bound if higher else value < bound) else "no")
        lines.append(f"| {name} | {good} | {_fmt_against(value, bound)} | {met} | {what} |")
    return lines


def _fmt_against(v, bound: float) -> str:
    """v to 3 significant digits, or more where 3 would round it onto the bound it is compared with (0.29998
    against 0.3 prints 0.29998, not 0.3)."""
    if v is None:
        return "n/a"
    for digits in range(3, 8):
        text = f"{v:.{digits}g}"
        if float(text) != bound or v == bound:
            return text
    return text


def _steps_note(wm: dict) -> str:
    """'6 future frames at 2 Hz (1 s / 2 s / 3 s = steps 2 / 4 / 6)' from the forecast metrics."""
    fc = next(iter(wm.get("forecast", {}).values()), {})
    steps_s = fc.get("steps_s") or []
    if not steps_s:
        return "future frames"
    rate = 1.0 / steps_s[0]
    at = [(s, k + 1) for k, s in enumerate(steps_s) if abs(s - round(s)) < 1e-6]
    return (f"{len(steps_s)} future frames at {rate:g} Hz ("
            + " / ".join(f"{s:g} s" for s, _ in at) + " = steps " + " / ".join(str(k) for _, k in at) + ")")


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def write_report(out: Path, *, data: Path, checkpoints: Path, forecast_dir: Path | None, validation: str,
                 generation: str, split_note: str, timings: dict[str, float], setup_note: str | None = None,
                 forecast_plan_dir: Path | None = None) -> Path:
    """`setup_note`: one sentence on the grid and model (the demo derives it from its configs);
    `forecast_plan_dir`: a forecast along the recorded path (plan-conditioned models), shown after the
    unconditioned one."""
    out.mkdir(parents=True, exist_ok=True)
    wm, tok = latest_metrics(checkpoints), latest_metrics(checkpoints / "tokenizer")
    if wm is None:
        raise RuntimeError(f"no evaluation metrics under {checkpoints / 'metrics'}: did stage 2 run an evaluation?")
    figs = data_figures(data, out)
    losses = loss_figure(checkpoints, out)
    tables, verdict = results_tables(wm, tok)
    tok_logs = checkpoints / "tokenizer" / "logs"
    ce = scalar_curves(tok_logs, ("train/ce",)).get("train/ce") if tok_logs.is_dir() else None
    guide = guide_table(wm, tok, float(ce[1][-1]) if ce is not None and len(ce[1]) else None)
    md = ["# OccWorld Tokyo: main job report", "",
          "Built-in sample district -> drone and rover sessions -> tokenizer (stage 1) -> world model (stage 2) -> "
          "evaluation against three baselines. CPU-sized model and grid (config/tiny_vqvae.py, config/tiny_finetune.py"
          + (f": {setup_note}" if setup_note else "") + "); numbers from a run of minutes are a smoke test of the "
          "pipeline, not a trained model's quality.", "",
          "## Data", "", f"    {generation}", "", "```", validation, "```", ""]
    for caption, file in figs:
        md += [f"![{caption}]({file})", f"*{caption}*", ""]
    md += ["## Training", "", f"Split: {split_note}", ""]
    if losses:
        md += [f"![losses]({losses})", ""]
    md += [f"Checkpoints and TensorBoard logs: `{checkpoints}` (`tensorboard --logdir {checkpoints}`).", "",
           "## Results (validation)", "",
           f"Forecast of {wm['val_samples']} validation windows after epoch {wm.get('epoch')}: "
           f"{_steps_note(wm)}; mIoU over non-free classes and "
           "binary IoU in %, VPQ in % (FIERY, moving classes, matched at IoU > 0.5 and > 0.2; docs/metrics.md), "
           "over every voxel and over the voxels the camera sees (Occ3D's convention). `world_model` forecasts "
           "without being told the path (OccWorld); `world_model_plan` (a plan-conditioned model only) forecasts "
           "given the true future path, the planner's question \"what will the scene look like if I follow this "
           "path?\"; `copy_last` repeats the last frame, `ego_warp` moves it by the true ego motion, "
           "`ego_warp_fill` also fills the cells entering the view as `copy_last` does. Methods named `mode+step` "
           "are hand-made steps on the model's forecast, not the model: `world_model_plan+voxel_copy` carries the "
           "ego-warped last frame wherever it reaches (the model decides only the cells entering the view), "
           "`+unseen_prior` removes classes the history does not show (docs/metrics.md, \"Hand-made methods\").",
           "", *tables,
           "", "### Where the model wins and loses", "",
           "Each world-model mode and hand-made method against each baseline (and the plan mode against the "
           "unconditioned one), per "
           "horizon, in percentage points (mode minus opponent):", "", *verdict, ""]
    md += ["The guide's expected metrics (its \"good values\"), as this run measures them (docs/training.md):", "",
           *guide, ""]
    if wm.get("notes"):
        md += ["Notes: " + "; ".join(wm["notes"]), ""]
    for title, folder, prefix in (("Forecast without a plan (world_model: OccWorld's own-motion forecast); top "
                                   "row ground truth, bottom row forecast", forecast_dir, ""),
                                  ("Forecast along the recorded path (world_model_plan)", forecast_plan_dir, "plan_")):
        if not (folder and folder.is_dir()):
            continue
        md += [f"### {title}", ""]
        for name in ("forecast_bev.png", "forecast_side.png", "forecast.gif"):
            if (folder / name).is_file():
                shutil.copy(folder / name, out / f"{prefix}{name}")
                md += [f"![{prefix}{name}]({prefix}{name})", ""]
        md += [f"Predicted frames in the data format: `{folder}`.", ""]
    md += ["## Time", "", "| stage | seconds |", "|---|---|"] + [f"| {k} | {v:.0f} |" for k, v in timings.items()]
    (out / "metrics.json").write_text(json.dumps({"world_model_stage": wm, "tokenizer_stage": tok,
                                                  "forecast_comparison": comparison_json(wm),
                                                  "timings_s": timings}, indent=2, default=str) + "\n")
    path = out / "report.md"
    path.write_text("\n".join(md) + "\n")
    return path
