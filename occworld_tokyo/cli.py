"""`occworld-tokyo <command>`: one console command over the package's entry points."""

from __future__ import annotations

import sys
from importlib import import_module

COMMANDS = {
    "generate": ("occworld_tokyo.sessions.command", "PLATEAU city model -> drone/rover sessions"),
    "index": ("occworld_tokyo.citymodel.index_command", "parse PLATEAU inputs into the tile cache, list places"),
    "sample-city": ("occworld_tokyo.citymodel.sample_city_command",
                    "write an N x N km sample city as PLATEAU mesh files"),
    "validate": ("occworld_tokyo.sessions.validate", "check a data folder of sessions"),
    "model": ("occworld_tokyo.model.summary", "print the parameters a config builds"),
    "train": ("occworld_tokyo.training.cli", "train / resume / evaluate (same flags as train.py)"),
    "forecast": ("occworld_tokyo.reports.forecast", "roll a checkpoint out on a session and write pictures"),
    "export": ("occworld_tokyo.export.command", "sessions -> Occ3D/OccWorld or UniOcc layout (--format occ3d|uniocc)"),
    "view": ("occworld_tokyo.viewer.command", "a session or forecast in the rerun viewer (.rrd; pip install .[viz])"),
    "demo": ("occworld_tokyo.reports.demo", "the main job: sample city -> sessions -> training -> evaluation -> report"),
    "benchmark-forecast": ("occworld_tokyo.reports.benchmark",
                           "area-split forecast benchmark: train / val / test areas, seeds, results.json"),
}


def usage() -> str:
    rows = "\n".join(f"  {name:<19} {help_}" for name, (_, help_) in COMMANDS.items())
    return f"usage: occworld-tokyo <command> [options]\n\ncommands:\n{rows}\n\n'occworld-tokyo <command> --help' for options"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    from occworld_tokyo.threads import prepare_openmp

    prepare_openmp()  # before anything loads torch: OpenMP threads then sleep instead of spinning (busy machines)
    from occworld_tokyo.errors import UserError

    module = import_module(COMMANDS[name][0])
    try:
        return int(module.main(rest) or 0)
    except UserError as exc:  # a mistake the user can fix: one line, exit 2 (any command)
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
