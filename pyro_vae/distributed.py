"""Data parallelism with torch.distributed: launched by ``torchrun``, a no-op in one process.

Each rank trains on its shard of every global batch; after each backward pass the gradients of every
parameter (module parameters and ``pyro.param`` values alike: DDP would see only a module's) are
averaged in one all-reduce, so every rank takes the same optimizer step as one process would.
Rank 0 owns the run folder: it alone reads and writes it, and sends what it read to the others
(so several machines need no shared file system).
"""

from __future__ import annotations

import atexit
import os
from typing import Callable

import torch
import torch.distributed as dist

from pyro_vae.errors import UserError


def init_from_env() -> None:
    """Joins the process group that ``torchrun`` describes in the environment (gloo on CPU, NCCL on GPU)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return
    backend, local_rank = "gloo", int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available() and dist.is_nccl_available() and local_rank < torch.cuda.device_count():
        torch.cuda.set_device(local_rank)
        backend = "cpu:gloo,cuda:nccl"  # the device of the tensors picks the backend, so --device cpu works too
    dist.init_process_group(backend)
    atexit.register(shutdown)


def shutdown() -> None:
    """Ends the process group, if one was started."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_and_world() -> tuple[int, int]:
    """(rank, number of processes): (0, 1) without torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def local_device(device: torch.device) -> torch.device:
    """On GPUs each torchrun process takes the GPU of its LOCAL_RANK."""
    if device.type == "cuda" and device.index is None and rank_and_world()[1] > 1:
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        if local_rank >= torch.cuda.device_count():
            raise UserError(f"torchrun started more processes on this machine than its {torch.cuda.device_count()} "
                            "GPU(s): use --nproc_per_node with at most one process per GPU, or --device cpu")
        return torch.device("cuda", local_rank)
    return device


def broadcast_(tensors: list[torch.Tensor]) -> None:
    """Every rank's ``tensors`` become rank 0's, in place (the parameters a data-parallel run starts from)."""
    if rank_and_world()[1] > 1:
        with torch.no_grad():
            for t in tensors:
                dist.broadcast(t, src=0)


def average_gradients_(params: list[torch.Tensor]) -> None:
    """Each gradient becomes the mean over the ranks, in one all-reduce of a flat buffer.

    This is what ``DistributedDataParallel`` does for a module's parameters, here for any tensor a
    program optimizes: ``pyro.param`` values in the param store as well as module parameters.
    """
    if rank_and_world()[1] == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= rank_and_world()[1]
    for g, part in zip(grads, flat.split([g.numel() for g in grads])):
        g.copy_(part.view_as(g))


def all_sum(value: torch.Tensor) -> torch.Tensor:
    """The sum of ``value`` over all processes (itself without torchrun)."""
    if rank_and_world()[1] > 1:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def all_max(value: torch.Tensor) -> torch.Tensor:
    """The maximum of ``value`` over all processes (itself without torchrun)."""
    if rank_and_world()[1] > 1:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return value


def all_gather(obj) -> list:
    """Every rank's ``obj``, in rank order (a one-element list in one process)."""
    if rank_and_world()[1] == 1:
        return [obj]
    objects = [None] * rank_and_world()[1]
    dist.all_gather_object(objects, obj)
    return objects


def from_rank0(compute: Callable):
    """Runs ``compute()`` on rank 0 only and returns its result on every rank.

    A :class:`UserError` on rank 0 is raised on every rank, so no rank waits for a partner that quit.
    """
    rank, world = rank_and_world()
    if world == 1:
        return compute()
    box = [None, None, None]  # result, a UserError's message, another error's description
    if rank == 0:
        try:
            box[0] = compute()
        except UserError as error:
            box[1] = str(error)
        except BaseException as error:
            box[2] = f"{type(error).__name__}: {error}"
            dist.broadcast_object_list(box, src=0)
            raise
    dist.broadcast_object_list(box, src=0)
    if box[1] is not None:
        raise UserError(box[1])
    if box[2] is not None:
        raise RuntimeError(f"rank 0 failed: {box[2]}")
    return box[0]
