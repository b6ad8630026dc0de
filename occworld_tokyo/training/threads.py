"""CPU threads of a training process, chosen so that the run degrades gracefully on a busy machine.

Measured (benchmarks/bench_threads.py, docs/training.md "CPU threads"): torch's OpenMP threads busy-wait
("spin") at the end of every parallel region by default. When other processes hold the cores, a spinning thread
burns the time slice its partner needs, every operator waits for its slowest thread, and the step rate of the
main job collapsed (6 -> 0.1 samples/s for minutes) while the CPU time stayed high. With
OMP_WAIT_POLICY=PASSIVE a waiting thread sleeps instead and gives the core back.

`configure_threads` must run before torch is imported (OpenMP reads the variable when it loads); an explicit
OMP_WAIT_POLICY / OMP_NUM_THREADS in the environment always wins.
"""

from __future__ import annotations

import os
import sys


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. under taskset / cgroups cpusets)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def configure_threads(workers: int = 0) -> str:
    """Set the OpenMP wait policy (before torch loads) and torch's intra-op threads; returns a line for the log.
    `workers` = data-loader worker processes of this process (each runs single-threaded)."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, usable_cores()))
    return (f"CPU threads: {torch.get_num_threads()} torch thread(s) on {usable_cores()} usable core(s), "
            f"{workers} loader worker(s), OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
