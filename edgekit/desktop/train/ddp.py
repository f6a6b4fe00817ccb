"""Scale-out with DistributedDataParallel: the same `edgekit train` under `torchrun --nproc_per_node N`.

torchrun (or any launcher) sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; with
WORLD_SIZE > 1 we join the process group (NCCL on CUDA, gloo on CPU), shard the training set with a
DistributedSampler, and let only rank 0 write files. Without those variables this is a one-process
no-op, so single-machine training takes the same code path.
"""

import os

import torch
import torch.distributed as dist

from edgekit.errors import ConfigError


class DistInfo(object):
    def __init__(self, rank=0, world_size=1, local_rank=0, device=None, backend=None):
        self.rank = rank
        self.world_size = world_size
        self.local_rank = local_rank
        self.device = device
        self.backend = backend

    @property
    def is_main(self):
        return self.rank == 0

    @property
    def distributed(self):
        return self.world_size > 1


def _env_int(name, default):
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError("environment variable %s=%r is not an integer" % (name, value),
                          hint="launch with torchrun, which sets RANK/WORLD_SIZE/LOCAL_RANK")


def pick_device(name, local_rank=0):
    cuda = torch.cuda.is_available()
    if name == "auto":
        name = "cuda" if cuda else "cpu"
    if name == "cuda":
        if not cuda:
            raise ConfigError("--device cuda asked for, but PyTorch sees no CUDA GPU",
                              hint="use --device cpu (or auto), or install a CUDA build of PyTorch")
        return torch.device("cuda", local_rank)
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError("unknown device %r" % (name,), hint="use auto, cpu or cuda")


def setup(device="auto"):
    """Read the launcher's environment, join the process group when WORLD_SIZE > 1."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank)
    dev = pick_device(device, local_rank)
    info = DistInfo(rank, world, local_rank, dev)
    if world > 1:
        info.backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        if not dist.is_initialized():
            dist.init_process_group(info.backend, rank=rank, world_size=world)
    return info


def cleanup(info):
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info):
    if info.distributed:
        dist.barrier()


def wrap(model, info):
    if not info.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def sync_buffers(model, info):
    """Give every rank rank 0's buffers (BatchNorm running statistics), so the weights are identical."""
    if not info.distributed:
        return
    for buf in model.buffers():
        dist.broadcast(buf.data, src=0)


def all_same(value, info):
    """rank 0's value of a small Python object, on every rank (used for stop decisions)."""
    if not info.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
