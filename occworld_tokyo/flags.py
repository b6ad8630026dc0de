"""Command-line flags that are checked when they are read, before any work: one line, naming the flag, exit 2.

`OneLineParser` prints a flag mistake as a single line (`error: <prog>: argument --seed: ...; see <prog> --help`)
instead of argparse's usage block. `ranged(kind, lo, hi)` is the type of every numeric flag: the range is declared
with the flag, NaN and infinities are refused, and an integer flag refuses `2.5` and `1e3`. tests/test_fault_classes_inputs.py
feeds hostile values to every typed flag of the generation, index and sample-city commands.
"""

from __future__ import annotations

import argparse
import math
import sys

SEED_MAX = 2 ** 63 - 1


class OneLineParser(argparse.ArgumentParser):
    """argparse with flag mistakes as one line on stderr, exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        print(f"error: {self.prog}: {message}; see {self.prog} --help", file=sys.stderr)
        sys.exit(2)


def ranged(kind, lo: float, hi: float, unit: str = ""):
    """An argparse type accepting `kind` values in [lo, hi] (finite; integers written as integers)."""
    span = f"{lo}..{hi}" if kind is int else f"{lo:g}..{hi:g}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a{'n integer' if kind is int else ' number'} (give {span}{unit})") from None
        if not (isinstance(value, int) or math.isfinite(value)) or not lo <= value <= hi:  # NaN fails too
            raise argparse.ArgumentTypeError(f"{text} is outside {span}{unit}")
        return value
    parse.__name__ = kind.__name__
    return parse


def seed(text: str) -> int:
    """A random seed: a whole number 0..2**63-1 (numpy's seed sequences take no negative values)."""
    return ranged(int, 0, SEED_MAX)(text)


def shard(text: str) -> tuple[int, int]:
    """'i/n' with n >= 1 and 0 <= i < n."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} must look like i/n, e.g. 0/4") from None
    if not (1 <= n <= 1_000_000 and 0 <= i < n):
        raise argparse.ArgumentTypeError(f"{text!r} must be i/n with n >= 1 and 0 <= i < n (shards 0/{max(n, 1)} .. "
                                         f"{max(n, 1) - 1}/{max(n, 1)})")
    return i, n


def region(text: str):
    """--region: mesh codes or a lat/lon box (occworld_tokyo.citymodel.meshcode.parse_region); the text is kept."""
    from occworld_tokyo.citymodel.meshcode import parse_region

    try:
        parse_region(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"--region {text!r}: ").removeprefix("--region: ")) \
            from None
    return text.strip()
