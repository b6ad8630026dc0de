"""`occworld-tokyo model --config FILE [--json]`: what a config builds, and what a checkpoint will load into.

Plain output: one row per parameter (name, shape, trainable) and parameter counts per module.
`--json`: `{"state_dict": {name: shape, ...}, "parameters": N}`, the form of the reference files in
../shared/reference/, so `diff` against a checkpoint's listing shows at a glance what will and will not load.
"""

from __future__ import annotations

import argparse
import json
from collections import OrderedDict

import torch.nn as nn

from ..config import load_config
from .build import build_model
from .checkpoint import load_pretrained


def module_counts(model: nn.Module) -> "OrderedDict[str, tuple[int, int]]":
    """Top-level module (vae split into encoder/decoder/vqvae/class_embeds) -> (parameters, trainable)."""
    counts: OrderedDict[str, tuple[int, int]] = OrderedDict()
    for name, param in model.named_parameters():
        parts = name.split(".")
        key = ".".join(parts[:2]) if parts[0] == "vae" else parts[0]
        total, trainable = counts.get(key, (0, 0))
        counts[key] = (total + param.numel(), trainable + (param.numel() if param.requires_grad else 0))
    return counts


def state_dict_listing(model: nn.Module) -> dict:
    state = model.state_dict()
    return {"state_dict": {k: list(v.shape) for k, v in state.items()},
            "parameters": int(sum(v.numel() for v in state.values()))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="occworld-tokyo model", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="config file, e.g. config/finetune_tokyo.py")
    parser.add_argument("--json", action="store_true", help="print {state_dict: {name: shape}, parameters: N}")
    parser.add_argument("--pretrained", metavar="FILE", help="also load FILE (e.g. the released latest.pth) as "
                        "training would and print what each module gets from it: loaded, or fresh (shape mismatch / "
                        "missing in the file)")
    parser.add_argument("--allow-pickle", action="store_true", help="with --pretrained: accept a pickled file")
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    if "model" not in cfg:
        parser.error(f"{args.config} defines no `model` dict")
    model = build_model(cfg["model"])
    if args.json:
        print(json.dumps(state_dict_listing(model), indent=1))
        return 0
    print(f"# {type(model).__name__} from {args.config}")
    print(f"{'name':<64} {'shape':<22} trainable")
    for name, param in model.named_parameters():
        print(f"{name:<64} {str(list(param.shape)):<22} {'yes' if param.requires_grad else 'no'}")
    print()
    print(f"{'module':<24} {'parameters':>12} {'trainable':>12}")
    for key, (total, trainable) in module_counts(model).items():
        print(f"{key:<24} {total:>12,} {trainable:>12,}")
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"{'total':<24} {total:>12,} {trainable:>12,}")
    print(f"state_dict tensors: {len(model.state_dict())}")
    if args.pretrained:
        print()
        report = load_pretrained(model, args.pretrained, allow_pickle=args.allow_pickle, log=lambda s: None)
        print(report.parameter_table(model))
    return 0
