"""`python train.py ...`: the guide's flags (section "Training Arguments") over `occworld_tokyo.training.run`.

Precedence: config file (with `_base_`) < the dedicated flags (--seed, --batch-size, --lr, --epochs) <
`--cfg-options key=value ...`. Unknown or misspelled config keys are an error that names the key.
Several `--gpu-ids` without torchrun: the command re-launches itself under torchrun with one process per GPU.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from occworld_tokyo.config import (ConfigError, check_compile, load_config, merge_options, share_declared_once,
                                   validate_config, with_defaults)
from occworld_tokyo.errors import UserError

DEFAULT_CONFIG = "config/finetune_tokyo.py"
EXIT_ERROR, EXIT_NONFINITE = 2, 3


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="train.py", description="Train the OccWorld tokenizer or world model on "
                                "Tokyo sessions (docs/training.md).")
    p.add_argument("--config", "--py-config", dest="config", default=DEFAULT_CONFIG, metavar="FILE",
                   help=f"config file path (default: {DEFAULT_CONFIG})")
    p.add_argument("--work-dir", default=None, metavar="DIR",
                   help="output directory (default: the config's work_dir, else ./checkpoints)")
    p.add_argument("--resume", action="store_true", help="resume from the latest checkpoint in the work dir")
    p.add_argument("--resume-from", default=None, metavar="FILE", help="resume from a specific checkpoint")
    p.add_argument("--from-scratch", action="store_true", help="train without pretrained weights (load_from)")
    p.add_argument("--gpu-ids", default=None, metavar="IDS", help="GPU ids, comma-separated (e.g. 0,1)")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="random seed (default: the config's seed, 42 unless the config sets another)")
    p.add_argument("--batch-size", type=int, default=None, metavar="N", help="override data.samples_per_gpu")
    p.add_argument("--lr", type=float, default=None, metavar="RATE", help="override optimizer.lr")
    p.add_argument("--epochs", type=int, default=None, metavar="N", help="override max_epochs")
    p.add_argument("--eval-only", action="store_true",
                   help="evaluate --resume-from FILE or the work dir's best.pth (never an untrained model)")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config keys, e.g. optimizer.weight_decay=0.05 data.workers_per_gpu=2")
    return p


def _positive(name: str, value: float | int | None) -> None:
    if value is not None and value <= 0:
        raise ConfigError(f"{name} must be > 0 (got {value})")


def resolve_config(args: argparse.Namespace) -> dict[str, Any]:
    """Config file + flags + --cfg-options, validated, with every unset setting at its declared default."""
    cfg = load_config(args.config)
    _positive("--batch-size", args.batch_size)
    _positive("--lr", args.lr)
    _positive("--epochs", args.epochs)
    if args.seed is not None:
        cfg["seed"] = args.seed
    if args.batch_size is not None:
        cfg.setdefault("data", {})["samples_per_gpu"] = args.batch_size
    if args.lr is not None:
        cfg.setdefault("optimizer", {})["lr"] = args.lr
    if args.epochs is not None:
        cfg["max_epochs"] = args.epochs
    cfg = merge_options(cfg, args.cfg_options)
    cfg = share_declared_once(cfg, str(args.config), {o.split("=", 1)[0].strip() for o in args.cfg_options})
    validate_config(cfg, source=str(args.config))
    for key in ("data_root", "point_cloud_range", "voxel_size", "history_frames", "future_frames", "model",
                "optimizer", "max_epochs"):
        if key not in cfg:
            raise ConfigError(f"{args.config}: required key {key!r} is missing")
    check_compile(cfg, source=str(args.config))
    return with_defaults(cfg)


def _relaunch_under_torchrun(n: int) -> int:
    """`python train.py --gpu-ids 0,1 ...` -> `python -m torch.distributed.run --nproc_per_node 2 train.py ...`."""
    import subprocess

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", *sys.argv]
    print("launching:", " ".join(cmd), file=sys.stderr)
    return subprocess.call(cmd)


def main(argv: list[str] | None = None) -> int:
    from occworld_tokyo.training.distributed import launched_by_torchrun, parse_gpu_ids

    args = build_parser().parse_args(argv)
    try:
        gpu_ids = parse_gpu_ids(args.gpu_ids)
        cfg = resolve_config(args)
    except (UserError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    import torch

    torch.set_flush_denormal(True)  # before torch starts its thread pool (see trainer.run)
    if gpu_ids and len(gpu_ids) > 1 and not launched_by_torchrun() and argv is None:
        if not torch.cuda.is_available():
            print("error: --gpu-ids lists several GPUs but CUDA is not available", file=sys.stderr)
            return EXIT_ERROR
        return _relaunch_under_torchrun(len(gpu_ids))
    if gpu_ids and not torch.cuda.is_available():
        print("warning: --gpu-ids given but CUDA is not available: running on CPU", file=sys.stderr)

    from occworld_tokyo.training.trainer import NonFiniteLossError, RunOptions, run

    work_dir = Path(args.work_dir or cfg["work_dir"])
    opts = RunOptions(work_dir=work_dir, resume=args.resume, resume_from=args.resume_from,
                      from_scratch=args.from_scratch, gpu_ids=gpu_ids, eval_only=args.eval_only,
                      config_path=str(args.config))
    try:
        run(cfg, opts)
    except NonFiniteLossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NONFINITE
    except UserError as exc:  # config, data, checkpoint, busy folder, untrained tokenizer: one line, exit 2
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
