"""Data-parallel training on the engines made for it: `mlx.launch` + `mx.distributed` for MLX, torchrun +
DDP for torch. We only build the launch command, tell a launched process which rank it is, and make the
loss token-weighted across ranks so N processes with a global batch B train exactly like one process
with batch B.

Why the loss needs care: mlx-lm's trainer and DDP both *average* gradients over ranks, and each rank's
loss is a mean over its own tokens. When ranks hold different numbers of target tokens, the average of
means is not the global mean. Scaling each rank's loss by (its tokens x world size / all tokens) makes
the averaged gradient the single-process one.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from morris_mlx.errors import MorrisError

MLX_BACKENDS = ("ring", "mpi")


@dataclass
class LaunchPlan:
    command: list[str]
    processes: int


def launched() -> bool:
    """True inside a process started by mlx.launch (MLX_RANK) or torchrun (RANK + WORLD_SIZE)."""
    return "MLX_RANK" in os.environ or ("RANK" in os.environ and "WORLD_SIZE" in os.environ)


def env_rank() -> int:
    """This process's rank from the launcher's environment (0 when not launched)."""
    return int(os.environ.get("MLX_RANK", os.environ.get("RANK", "0")))


def count_hosts(hostfile: Path) -> int:
    """Processes an mlx.launch hostfile starts: one per host entry (a JSON list, or {"hosts": [...]})."""
    try:
        data = json.loads(Path(hostfile).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MorrisError(f"hostfile {hostfile} does not exist; write one (see `morris train --help`)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MorrisError(f"hostfile {hostfile} is not valid JSON ({exc}); see `morris train --help`") from None
    hosts = data.get("hosts") if isinstance(data, dict) else data
    if not isinstance(hosts, list) or not hosts or not all(isinstance(h, dict) and "ssh" in h for h in hosts):
        raise MorrisError(
            f'hostfile {hostfile} must be a JSON list of hosts like [{{"ssh": "mac1", "ips": ["10.0.0.1"]}}]'
        )
    return len(hosts)


def launch_plan(
    backend: str,
    train_argv: list[str],
    processes: int | None,
    hostfile: Path | None,
    mlx_backend: str = "ring",
) -> LaunchPlan:
    """The command that starts `morris train train_argv` on every rank."""
    morris = ["-m", "morris_mlx", "train", *train_argv]
    if backend == "mlx":
        if mlx_backend not in MLX_BACKENDS:
            raise MorrisError(f"unknown MLX distributed backend {mlx_backend!r}; use ring or mpi")
        launcher = shutil.which("mlx.launch", path=str(Path(sys.executable).parent)) or shutil.which(
            "mlx.launch"
        )
        if launcher is None:
            raise MorrisError("mlx.launch is not installed; pip install mlx (it ships with MLX)")
        if hostfile is not None:
            count = count_hosts(hostfile)
            where = ["--hostfile", str(hostfile)]
        else:
            count = processes or 2
            where = ["--hosts", "127.0.0.1", "-n", str(count)]
        command = [launcher, *where, "--backend", mlx_backend, "--python", sys.executable, "--", *morris]
        return LaunchPlan(command, count)
    if backend == "torch":
        if hostfile is not None:
            raise MorrisError(
                "--hostfile is for the MLX backend; for torch on several machines run "
                "`torchrun --nnodes N --node-rank R --master-addr HOST -m morris_mlx train --backend torch ...` "
                "on each machine"
            )
        count = processes or 2
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(count)]
        return LaunchPlan([*command, *morris], count)
    raise MorrisError(f"--distributed needs --backend mlx or torch, not {backend!r}")


# MLX ---------------------------------------------------------------------------------------------------


def mlx_world() -> Any:
    """The mx.distributed group; a launched process that ends up alone is an error, not a silent solo run
    that would train the same adapter twice."""
    import mlx.core as mx

    world = mx.distributed.init()
    if "MLX_RANK" in os.environ and world.size() == 1:
        raise MorrisError(
            "started by mlx.launch but mx.distributed found no peers; check the hostfile and that "
            "every host can reach the others"
        )
    return world


def mlx_global_token_loss(world: Any):
    """mlx-lm's default loss, weighted so the trainer's gradient average equals the global-batch mean."""
    import mlx.core as mx
    from mlx_lm.tuner.trainer import default_loss

    size = world.size()

    def loss(model: Any, batch: Any, lengths: Any):
        ce, ntoks = default_loss(model, batch, lengths)
        total = mx.stop_gradient(mx.distributed.all_sum(ntoks, group=world))
        return ce * ntoks.astype(ce.dtype) * size / total.astype(ce.dtype), ntoks

    return loss


# torch -------------------------------------------------------------------------------------------------


@dataclass
class TorchWorld:
    rank: int = 0
    size: int = 1
    device: str = "cpu"

    @property
    def primary(self) -> bool:
        return self.rank == 0

    def all_sum(self, value: Any) -> Any:
        """Sum a tensor over ranks (a copy; the input is untouched)."""
        if self.size == 1:
            return value
        import torch.distributed as dist

        total = value.detach().clone()
        dist.all_reduce(total)
        return total

    def close(self) -> None:
        if self.size > 1:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()


def torch_world(device: str) -> TorchWorld:
    """Join torchrun's process group (gloo on CPU, NCCL on CUDA) when launched by it."""
    if not ("RANK" in os.environ and "WORLD_SIZE" in os.environ) or int(os.environ["WORLD_SIZE"]) == 1:
        return TorchWorld(device=device)
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    elif device == "mps":
        raise MorrisError("distributed torch training is not supported on MPS; use the MLX backend on Macs")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return TorchWorld(rank=dist.get_rank(), size=dist.get_world_size(), device=device)
