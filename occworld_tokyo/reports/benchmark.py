"""`occworld-tokyo benchmark-forecast`: a forecast benchmark that cannot be tuned to (docs/benchmarks.md).

    occworld-tokyo benchmark-forecast --profile cpu|gpu --out DIR [--real FILES] [--seeds 0 1 2]

1. An area split: the sample city of the profile (N x N level-3 mesh squares) is written three times, each copy
   holding only its split's squares (`write_sample_city(tiles=...)`: buildings, streets, trees, water and the
   terrain under those squares only). West half -> train, south-east quarter -> val, north-east quarter -> test.
   No geometry of a val or test square is in the train files, so no session of one split can see another's area.
   `--real FILES` (e.g. ../shared/data/plateau/*.gml) adds a second test set of real PLATEAU tiles (test_real),
   never trained or chosen on.
2. Sessions per split (drones and rovers alternating), validated.
3. Per seed: the tokenizer and the world model trained on train (`data_root`), validated on val (`data.val_root`:
   the checkpoint kept, best.pth, is chosen on val); every other setting, including the hand-made methods' logits,
   is the profile's config as committed (chosen before this benchmark, on other windows), never on test.
4. Each seed's best.pth scored ONCE on each test set (and on val, for reference) with every method on the same
   windows: the model (`model`, `model_plan`), the baselines (`copy_last`, `ego_warp`, `ego_warp_fill`) and the
   hand-made methods (`model_plan+voxel_copy`, `model+unseen_prior`), per agent (all / drone / rover), over
   camera-visible and all voxels, mIoU under Occ3D's and the released OccWorld's rule, IoU, VPQ at IoU 0.5 and 0.2.
5. `DIR/results.json`: a list of flat rows {split, method, seed, agent, voxels, rule, horizon_s, miou, iou, vpq,
   vpq_0.2}; `DIR/results.md`: mean, spread (min..max) over the seeds, and per comparison whether the model beats a
   method at its WORST seed (the only "beats" the table states).
VPQ is over all forecast steps (not per horizon): the same number is on each horizon's row.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from occworld_tokyo.config import CONFIG_DIR

SPLITS = ("train", "val", "test")
METHOD_NAMES = {"world_model": "model", "world_model_plan": "model_plan", "copy_last": "copy_last",
                "ego_warp": "ego_warp", "ego_warp_fill": "ego_warp_fill",
                "world_model_plan+voxel_copy": "model_plan+voxel_copy", "world_model+unseen_prior": "model+unseen_prior",
                "world_model_plan_ungated": "model_plan_ungated"}
BASELINES = ("copy_last", "ego_warp", "ego_warp_fill")
HORIZONS = (("1s", 1.0), ("2s", 2.0), ("3s", 3.0), ("avg", "avg"))


@dataclass(frozen=True)
class Profile:
    city_km: int                 # the sample city's squares per side (>= 2, even)
    sessions: dict[str, int]     # per split
    frames: dict[str, int]       # per session, per split
    tokenizer_config: str        # packaged config names
    world_config: str
    tokenizer_epochs: int
    world_epochs: int
    options: tuple[str, ...] = ()  # --cfg-options for both stages (batch size ...)


PROFILES = {
    # about an hour on 2 CPU cores (docs/benchmarks.md): the main job's CPU-sized grid and model
    "cpu": Profile(city_km=4, sessions={"train": 8, "val": 4, "test": 4}, frames={"train": 60, "val": 40, "test": 40},
                   tokenizer_config="tiny_vqvae.py", world_config="tiny_finetune.py", tokenizer_epochs=6,
                   world_epochs=6),
    # minutes: checks the pipeline (tests, a first look), says nothing of quality
    "smoke": Profile(city_km=2, sessions={"train": 2, "val": 2, "test": 2}, frames={"train": 16, "val": 12, "test": 12},
                     tokenizer_config="tiny_test_vqvae.py", world_config="tiny_test_finetune.py", tokenizer_epochs=1,
                     world_epochs=1),
    # the guide's full size (200 x 200 x 121, config/finetune_tokyo.py) for a GPU
    "gpu": Profile(city_km=8, sessions={"train": 24, "val": 6, "test": 6},
                   frames={"train": 200, "val": 100, "test": 100}, tokenizer_config="vqvae_tokyo.py",
                   world_config="finetune_tokyo.py", tokenizer_epochs=20, world_epochs=20,
                   options=("data.samples_per_gpu=2", "load_from=None")),
}


def area_split(city_km: int) -> dict[str, list[str]]:
    """The sample city's squares -> {train: west half, val: south-east quarter, test: north-east quarter}."""
    from occworld_tokyo.citymodel.meshcode import neighbour
    from occworld_tokyo.citymodel.sample_city import city_tiles

    if city_km < 2 or city_km % 2:
        raise ValueError(f"the area split needs an even city size >= 2 km (got {city_km})")
    tiles = city_tiles(city_km)
    sw = min(tiles)
    half = city_km // 2
    split: dict[str, list[str]] = {s: [] for s in SPLITS}
    for r in range(city_km):          # r: squares north of the south-west one, c: east
        for c in range(city_km):
            code = neighbour(sw, r, c)
            split["train" if c < half else ("val" if r < half else "test")].append(code)
    assert sorted(sum(split.values(), [])) == tiles, "the split must cover every square once"
    return {s: sorted(v) for s, v in split.items()}


def _stage(title: str) -> float:
    print(f"\n=== {title} ===", flush=True)
    return time.perf_counter()


def make_data(out: Path, profile: Profile, real: list[str] | None, workers: int) -> dict[str, Path]:
    """The split cities and their sessions -> {split: data folder} (train, val, test, and test_real with --real)."""
    from occworld_tokyo.citymodel.sample_city import write_sample_city
    from occworld_tokyo.sessions import GenerationSpec, generate_sessions
    from occworld_tokyo.sessions.validate import format_summary, validate

    folders: dict[str, Path] = {}
    inputs: dict[str, list[str]] = {}
    for split, tiles in area_split(profile.city_km).items():
        city = out / "city" / split
        if not (city / "udx").is_dir():
            write_sample_city(city, size_km=profile.city_km, tiles=tiles)
        inputs[split] = [str(city / "udx")]
    if real:
        inputs["test_real"] = list(real)
    for k, (split, files) in enumerate(inputs.items()):
        key = "test" if split == "test_real" else split
        data = out / "data" / split
        spec = GenerationSpec(frames=profile.frames[key], sessions=profile.sessions[key], seed=100 * (k + 1))
        print(f"{split}: {spec.sessions} sessions x {spec.frames} frames from {', '.join(files)}", flush=True)
        gen = generate_sessions(data, files, spec=spec, workers=workers)
        print(gen.summary())
        checks, problems = validate(data)
        if problems or any(c.problems for c in checks):
            raise RuntimeError(f"the {split} sessions did not validate:\n{format_summary(checks, problems)}")
        folders[split] = data
    return folders


def train_seed(out: Path, profile: Profile, folders: dict[str, Path], seed: int, world_options: list[str],
               reuse: Path | None = None, world_epochs: int | None = None) -> Path:
    """Both stages on train, validated on val -> the seed's best.pth (chosen on val); a stage whose best.pth and
    metrics exist is kept. `reuse`: an earlier run's folder whose tokenizer of this seed is used when it has one;
    `world_options`: --cfg-options of the world-model stage (a variant, e.g. model.plan.gate=...), '{seed}' in them
    replaced by the seed (e.g. load_from=DIR/runs/seed{seed}/best.pth: the gate trained alone on each seed's world
    model)."""
    from occworld_tokyo.training.cli import main as train_main

    world_options = [o.replace("{seed}", str(seed)) for o in world_options]

    ckpt = out / "runs" / f"seed{seed}"
    common = ["--seed", str(seed), "--cfg-options", f"data_root={folders['train']}", f"data.val_root={folders['val']}",
              "evaluation.max_samples=None", *profile.options]
    tokenizer = out / "runs" / f"seed{seed}" / "tokenizer"
    if reuse and (reuse / "runs" / f"seed{seed}" / "tokenizer" / "best.pth").is_file():
        tokenizer = reuse / "runs" / f"seed{seed}" / "tokenizer"
    stages = [(profile.tokenizer_config, tokenizer, profile.tokenizer_epochs, []),
              (profile.world_config, ckpt, world_epochs or profile.world_epochs,
               [f"tokenizer_checkpoint={tokenizer / 'best.pth'}",
                                                                   *world_options])]
    for cfg, work, epochs, extra in stages:
        if (work / "best.pth").is_file() and (work / "metrics").is_dir():
            print(f"seed {seed}: {work / 'best.pth'} exists, kept", flush=True)
            continue
        argv = ["--config", str(CONFIG_DIR / cfg), "--work-dir", str(work), "--epochs", str(epochs), *common,
                f"evaluation.interval={epochs}", *extra]
        if train_main(argv) != 0:
            raise RuntimeError(f"seed {seed}: training {cfg} failed; see the log above")
    return ckpt / "best.pth"


def score(checkpoint: Path, folder: Path) -> dict[str, Any]:
    """One evaluation of a world-model checkpoint on every window of a folder of sessions (its config's
    evaluation settings, window stride and visibility)."""
    import torch

    from occworld_tokyo.dataset.grid_select import select_grid
    from occworld_tokyo.dataset.loader import make_loader
    from occworld_tokyo.dataset.sessions import find_sessions
    from occworld_tokyo.dataset.windows import OccWindowDataset, SessionPart
    from occworld_tokyo.reports.forecast import load_trained
    from occworld_tokyo.training.evaluate import evaluate
    from occworld_tokyo.training.precision import choose_precision
    from occworld_tokyo.training.stages import stage_for

    model, cfg = load_trained(checkpoint)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    sessions = find_sessions(folder)
    selection = select_grid(cfg["point_cloud_range"], cfg["voxel_size"], stored=sessions[0].grid)
    ev = dict(cfg["evaluation"])
    ds = OccWindowDataset([SessionPart(s, 0, s.n_frames) for s in sessions], model.history_frames,
                          model.future_frames, selection, stride=int(cfg["data"]["val_window_stride"]),
                          with_instances=True, visibility=ev["visibility"])
    loader = make_loader(ds, int(cfg["data"]["samples_per_gpu"]), 0, None)
    metrics, _ = evaluate(model, loader, stage_for(model), selection.grid, min(s.rate_hz for s in sessions), device,
                          choose_precision(cfg, device), ev, int(cfg["num_classes"]), int(cfg["free_index"]), None)
    return metrics


def rows_of(metrics: dict, split: str, seed: int) -> list[dict[str, Any]]:
    """One evaluation's metrics -> the flat result rows (module docstring)."""
    rows: list[dict[str, Any]] = []
    groups = {"all": metrics, **(metrics.get("by_agent") or {})}
    for agent, g in groups.items():
        for suffix, voxels in (("_visible", "visible"), ("", "all")):
            fc, vpq = g.get(f"forecast{suffix}") or {}, g.get(f"vpq{suffix}") or {}
            for method, f in fc.items():
                v = vpq.get(method) or {}
                by = v.get("by_threshold") or {}
                for rule, key in (("occ3d", "miou"), ("occworld", "miou_occworld")):
                    for tag, horizon in HORIZONS:
                        rows.append({"split": split, "method": METHOD_NAMES.get(method, method), "seed": seed,
                                     "agent": agent, "voxels": voxels, "rule": rule, "horizon_s": horizon,
                                     "miou": f.get(f"{key}_{tag}"), "iou": f.get(f"iou_{tag}"),
                                     "vpq": (by.get("0.5") or {}).get("vpq", v.get("vpq")),
                                     "vpq_0.2": (by.get("0.2") or {}).get("vpq"),
                                     "windows": metrics.get("windows_scored")})
    return rows


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}"


def summary_table(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown: per split, agent, voxel set and rule, each method's mean over seeds (min..max) at 1/2/3 s and avg,
    IoU, VPQ; then the comparisons of model_plan and model against each other method at the worst seed."""
    import numpy as np

    lines: list[str] = []
    seeds = sorted({r["seed"] for r in rows})
    key = lambda r: (r["split"], r["agent"], r["voxels"], r["rule"])  # noqa: E731
    for split, agent, voxels, rule in sorted({key(r) for r in rows}, key=lambda k: (k[0], k[1] != "all", k[1],
                                                                                     k[2] != "visible", k[3])):
        sel = [r for r in rows if key(r) == (split, agent, voxels, rule)]
        methods = list(dict.fromkeys(r["method"] for r in sel))
        lines += [f"### {split}, {agent} agents, {voxels} voxels, mIoU rule {rule} (%, mean over seeds "
                  f"{', '.join(map(str, seeds))} with min..max)", "",
                  "| method | mIoU 1 s | 2 s | 3 s | avg | IoU 1 s | 2 s | 3 s | avg | VPQ 0.5 | VPQ 0.2 |",
                  "|---" * 11 + "|"]
        values: dict[tuple[str, str, str], list[float]] = {}
        for m in methods:
            cells = []
            for metric in ("miou", "iou"):
                for _, h in HORIZONS:
                    vals = [r[metric] for r in sel if r["method"] == m and r["horizon_s"] == h
                            and r[metric] is not None]
                    values[(m, metric, str(h))] = vals
                    cells.append("n/a" if not vals else
                                 f"{_pct(float(np.mean(vals)))} ({_pct(min(vals))}..{_pct(max(vals))})")
            for metric in ("vpq", "vpq_0.2"):
                vals = [r[metric] for r in sel if r["method"] == m and r["horizon_s"] == 1.0 and r[metric] is not None]
                values[(m, metric, "all")] = vals
                cells.append("n/a" if not vals else f"{_pct(float(np.mean(vals)))} ({_pct(min(vals))}..{_pct(max(vals))})")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
        for learned in ("model_plan", "model"):
            if learned not in methods:
                continue
            verdicts = []
            for other in [m for m in methods if m in BASELINES]:
                beats, loses = [], []
                for metric, name in (("miou", "mIoU"), ("iou", "IoU")):
                    for tag, h in HORIZONS[:3]:
                        a, b = values.get((learned, metric, str(h))), values.get((other, metric, str(h)))
                        if not a or not b:
                            continue
                        (beats if min(a) > max(b) else loses).append(f"{name} {tag}")
                verdicts.append(f"vs {other}: beats at its worst seed on "
                                f"{', '.join(beats) if beats else 'nothing'}"
                                + (f"; does not on {', '.join(loses)}" if loses else ""))
            lines += [f"- **{learned}** (the model's own forecast) " + "; ".join(verdicts) + ".", ""]
    return lines


def headline_table(rows: list[dict[str, Any]], split: str, agent: str = "all") -> list[str]:
    """Markdown: one line per method of one split, the numbers the field reports first: mIoU (Occ3D's rule) at
    1 / 2 / 3 s over camera-visible and over all voxels, the released OccWorld's rule (avg, visible), IoU at 1 / 2 / 3 s
    (visible), VPQ at IoU 0.5 (all voxels); each the mean over seeds with min..max."""
    import numpy as np

    def cell(method, voxels, rule, h, metric):
        vals = [r[metric] for r in rows if r["split"] == split and r["agent"] == agent and r["method"] == method
                and r["voxels"] == voxels and r["rule"] == rule and r["horizon_s"] == h and r[metric] is not None]
        if not vals:
            return "n/a"
        return f"{100 * float(np.mean(vals)):.1f} ({100 * min(vals):.1f}..{100 * max(vals):.1f})"

    methods = list(dict.fromkeys(r["method"] for r in rows if r["split"] == split and r["agent"] == agent))
    n = len({r["seed"] for r in rows if r["split"] == split})
    lines = [f"{split}, {agent} agents, {n} seed(s), % mean (min..max):", "",
             "| method | mIoU visible 1 / 2 / 3 s | mIoU all 1 / 2 / 3 s | mIoU OccWorld rule visible avg | "
             "IoU visible 1 / 2 / 3 s | VPQ 0.5 all |", "|---|---|---|---|---|---|"]
    for m in methods:
        lines.append(f"| {m} | " + " / ".join(cell(m, "visible", "occ3d", h, "miou") for h in (1.0, 2.0, 3.0))
                     + " | " + " / ".join(cell(m, "all", "occ3d", h, "miou") for h in (1.0, 2.0, 3.0))
                     + f" | {cell(m, 'visible', 'occworld', 'avg', 'miou')} | "
                     + " / ".join(cell(m, "visible", "occ3d", h, "iou") for h in (1.0, 2.0, 3.0))
                     + f" | {cell(m, 'all', 'occ3d', 1.0, 'vpq')} |")
    return lines + [""]


def run_benchmark(profile_name: str, out: Path, real: list[str] | None, seeds: list[int], workers: int,
                  profile: Profile | None = None, world_options: list[str] | None = None,
                  reuse: Path | None = None, world_epochs: int | None = None) -> Path:
    """The whole benchmark (module docstring); `profile` overrides PROFILES[profile_name] (tests); `reuse`: the data
    and tokenizers of an earlier run (`--reuse`), `world_options` a world-model variant (`--world-options`),
    `world_epochs` its epochs (`--world-epochs`; default: the profile's)."""
    profile = profile or PROFILES[profile_name]
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if reuse:
        t = _stage(f"1/3 data and tokenizers of {reuse}")
        folders = {p.name: p for p in sorted((reuse / "data").iterdir()) if p.is_dir()}
        missing = [s for s in SPLITS if s not in folders]
        if missing:
            raise ValueError(f"--reuse {reuse}: data of {missing} missing; give a benchmark-forecast folder of the "
                             "same profile whose data step finished")
    else:
        t = _stage(f"1/3 data: area split of a {profile.city_km} x {profile.city_km} km sample city"
                   + (f" + real test tiles {real}" if real else ""))
        folders = make_data(out, profile, real, workers)
    timings = {"data_s": time.perf_counter() - t}
    rows: list[dict[str, Any]] = []
    runs = []
    for seed in seeds:
        t = _stage(f"2/3 seed {seed}: train on train, choose on val")
        best = train_seed(out, profile, folders, seed, list(world_options or []), reuse, world_epochs)
        timings[f"train_seed{seed}_s"] = time.perf_counter() - t
        t = _stage(f"3/3 seed {seed}: score once on " + ", ".join(s for s in folders if s != "train"))
        for split in (s for s in folders if s != "train"):
            saved = out / "runs" / f"seed{seed}" / f"scores_{split}.json"
            if saved.is_file() and saved.stat().st_mtime > best.stat().st_mtime:
                metrics = json.loads(saved.read_text())  # this checkpoint was scored once already: not again
            else:
                metrics = score(best, folders[split])
                saved.write_text(json.dumps(metrics, default=str))
            rows += rows_of(metrics, split, seed)
        timings[f"score_seed{seed}_s"] = time.perf_counter() - t
        runs.append(str(best))
    timings["total_s"] = time.perf_counter() - t0
    (out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    md = [f"# Forecast benchmark, profile {profile_name}", "",
          f"Area split of a {profile.city_km} x {profile.city_km} km sample city ({', '.join(f'{s}: {len(v)} squares' for s, v in area_split(profile.city_km).items())})"
          + (f"; real test tiles: {', '.join(real)}" if real else "") + f"; seeds {seeds}; checkpoints {runs}.",
          f"Configs {profile.tokenizer_config} + {profile.world_config}, {profile.tokenizer_epochs} + "
          f"{world_epochs or profile.world_epochs} epochs" + (f", world model with {' '.join(world_options)}" if world_options else "")
          + (f", data and tokenizers of {reuse}" if reuse else "") + ". Times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()), "",
          "\"Beats\" is said only where the method's worst seed is above the other's best seed.", "",
          "## Headline", "", *[line for split in sorted({r["split"] for r in rows}) if split != "val"
                                for agent in ("all", "drone", "rover") for line in headline_table(rows, split, agent)],
          "## Every group", "", *summary_table(rows)]
    (out / "results.md").write_text("\n".join(md) + "\n")
    (out / "timings.json").write_text(json.dumps(timings, indent=1) + "\n")
    return out / "results.md"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="occworld-tokyo benchmark-forecast", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", choices=sorted(PROFILES), required=True)
    p.add_argument("--out", type=Path, required=True, help="output folder (a re-run keeps its data and checkpoints)")
    p.add_argument("--real", nargs="+", default=None, help="real PLATEAU files: a second test set (test_real)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default: 0 1 2)")
    p.add_argument("--workers", type=int, default=2, help="data generation processes")
    p.add_argument("--world-options", nargs="+", default=[], metavar="KEY=VALUE",
                   help="--cfg-options of the world-model stage: a variant (e.g. model.plan.gate=\"{'hidden_channels': 16}\")")
    p.add_argument("--world-epochs", type=int, default=None, metavar="N",
                   help="epochs of the world-model stage (default: the profile's), e.g. a gate trained alone")
    p.add_argument("--reuse", type=Path, default=None,
                   help="an earlier benchmark-forecast folder: its data, and its tokenizers where it has them")
    args = p.parse_args(argv)
    if len(set(args.seeds)) < len(args.seeds) or any(s < 0 for s in args.seeds):
        print(f"error: --seeds must be distinct whole numbers >= 0 (got {args.seeds})", file=sys.stderr)
        return 2
    if args.world_epochs is not None and args.world_epochs < 1:
        print(f"error: --world-epochs must be >= 1 (got {args.world_epochs})", file=sys.stderr)
        return 2
    try:
        path = run_benchmark(args.profile, args.out, args.real, args.seeds, args.workers,
                             world_options=args.world_options, reuse=args.reuse, world_epochs=args.world_epochs)
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"\nresults: {path} and {args.out / 'results.json'}")
    return 0
