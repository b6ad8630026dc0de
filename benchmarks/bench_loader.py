"""Data-loader throughput of a training config on real session folders, to compare with the train step rate.

    python benchmarks/bench_loader.py --config config/finetune_tokyo.py --data-root data/tokyo_gazebo \
        --workers 0 4 --batch-sizes 1 4

For each (workers, batch size): the config's train windows through `make_loader` (the trainer's DataLoader),
`measure_loader` over --batches batches after the first (worker start-up excluded). Prints samples/s and frames/s
(a sample is one window of history + future frames).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "config/finetune_tokyo.py"))
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 4])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)

    from occworld_tokyo.config import load_config
    from occworld_tokyo.dataset import build_datasets, make_loader, measure_loader

    cfg = load_config(args.config)
    cfg["data_root"] = args.data_root
    bundle = build_datasets(cfg, with_instances_val=False)
    results = []
    for workers in args.workers:
        for batch in args.batch_sizes:
            loader = make_loader(bundle.train, batch, workers, None)
            it = iter(loader)
            next(it)  # worker start-up and the first batch are not throughput
            stats = measure_loader(loader, max_batches=args.batches)
            row = {"workers": workers, "batch": batch, "windows": len(bundle.train), "window_frames": bundle.train.window,
                   "samples_per_s": stats["batches"] * batch / stats["seconds"], **stats}
            results.append(row)
            print(f"workers {workers} batch {batch}: {row['samples_per_s']:.2f} samples/s, "
                  f"{stats['frames_per_s']:.1f} frames/s ({stats['batches']} batches in {stats['seconds']:.1f} s)",
                  flush=True)
            del it, loader
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
