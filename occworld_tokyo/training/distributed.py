"""torch.distributed set-up for torchrun (single node or multi-node) and plain single-process runs.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR; we pick NCCL with CUDA and gloo on CPU.
`--gpu-ids 2,3` selects the devices: local rank i uses GPU gpu_ids[i].
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def parse_gpu_ids(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(t) for t in text.split(",") if t.strip() != ""]
    except ValueError as exc:
        raise ValueError(f"--gpu-ids must be comma-separated integers like 0,1 (got {text!r})") from exc


def init_distributed(gpu_ids: list[int] | None = None) -> DistEnv:
    """Initialise the process group when launched by torchrun; pick this process's device."""
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        ids = gpu_ids or list(range(torch.cuda.device_count()))
        if local >= len(ids):
            raise ValueError(f"local rank {local} has no GPU: --gpu-ids {ids} lists {len(ids)} device(s)")
        device = torch.device("cuda", ids[local])
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistEnv(rank, world, local, device)


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def all_reduce_mean(value: torch.Tensor, env: DistEnv) -> torch.Tensor:
    if env.distributed:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= env.world_size
    return value


def all_reduce_sum(value: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """A copy of `value` summed over all processes (the value itself when not distributed)."""
    if env.distributed:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def broadcast_(tensor: torch.Tensor, env: DistEnv, src: int = 0) -> torch.Tensor:
    """In place: every process gets process `src`'s values."""
    if env.distributed:
        dist.broadcast(tensor, src=src)
    return tensor


def all_gather_objects(obj, env: DistEnv) -> list:
    if not env.distributed:
        return [obj]
    out = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, env: DistEnv, src: int = 0):
    if not env.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def cleanup(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()
