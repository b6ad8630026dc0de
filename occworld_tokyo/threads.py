"""CPU threads of a training process, chosen so that the run degrades gracefully on a busy machine.

Measured (benchmarks/bench_threads.py, docs/training.md "CPU threads"): torch's OpenMP threads busy-wait
("spin") at the end of every parallel region by default. When other processes hold the cores, a spinning thread
burns the time slice its partner needs, every operator waits for its slowest thread, and the step rate of the
main job collapsed (6 -> 0.1 samples/s for minutes) while the CPU time stayed high. With
OMP_WAIT_POLICY=PASSIVE a waiting thread sleeps instead and gives the core back.

`prepare_openmp` must run before torch is imported (OpenMP reads the variable when it loads): `train.py` and the
`occworld-tokyo` command call it first thing. An explicit OMP_WAIT_POLICY / OMP_NUM_THREADS in the environment
always wins. This module imports nothing heavy (no torch) for that reason.
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


def prepare_openmp() -> None:
    """OMP_WAIT_POLICY=PASSIVE unless the environment says otherwise; call before torch is imported (the
    command-line entry points do it first thing). Changes speed only, never results."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def configure_threads(workers: int = 0) -> str:
    """Torch's intra-op threads for a training process (an explicit OMP_NUM_THREADS wins); returns a line for
    the log. `workers` = its data-loader worker processes (each runs single-threaded)."""
    prepare_openmp()
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, usable_cores()))
    return (f"CPU threads: {torch.get_num_threads()} torch thread(s) on {usable_cores()} usable core(s), "
            f"{workers} loader worker(s), OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
