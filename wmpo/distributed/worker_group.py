"""A Ray worker group: N actors of one class placed with a placement group (one bundle per GPU, or CPU bundles on
a machine without GPUs), joined by a torch.distributed process group (NCCL on GPU, gloo on CPU).

Dispatch is explicit: ``call_all`` sends the same arguments to every worker (one-to-all), ``call_each`` sends
worker i its own arguments (data-parallel split), ``call_one`` asks rank 0 alone; results come back in rank order.
A worker whose process ends raises :class:`WorkerLost` naming its rank, node and pid, even while the others wait
in a collective for it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("wmpo")


class WorkerLost(RuntimeError):
    """A worker process of the group ended; the group cannot continue."""


def ray_error_summary(exc: BaseException) -> str:
    """The first line of a Ray error: what happened, without the dozen lines of generic advice that follow."""
    return next(iter(str(exc).splitlines()), type(exc).__name__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


RUNTIME_ENV_VARS = ("MUJOCO_GL", "PYOPENGL_PLATFORM", "TOKENIZERS_PARALLELISM", "PYTORCH_CUDA_ALLOC_CONF",
                    "HF_HUB_OFFLINE", "NCCL_DEBUG")
"""Caller settings every Ray worker inherits (rendering platform, allocator, offline mode, NCCL logging)."""


def init_ray() -> None:
    """Join the cluster started by launch_head.sh (``RAY_ADDRESS`` or a local ``ray start``), else start a local
    one; workers get the caller's rendering and allocator settings."""
    import ray

    if ray.is_initialized():
        return
    from wmpo.envs.rendering import configure_gl

    configure_gl()
    env_vars = {k: os.environ[k] for k in RUNTIME_ENV_VARS if k in os.environ}
    ray.init(include_dashboard=False, logging_level=logging.WARNING, runtime_env={"env_vars": env_vars})


def visible_index(gpu_id: str) -> int:
    """CUDA index of a physical GPU id under the current ``CUDA_VISIBLE_DEVICES``."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    return visible.index(gpu_id) if gpu_id in visible else int(gpu_id)


def init_process_group(rank: int, world_size: int, master_addr: str, master_port: int, use_gpu: bool) -> None:
    """Join the workers' torch.distributed group (called inside each worker)."""
    import torch
    import torch.distributed as dist

    os.environ.update({"MASTER_ADDR": master_addr, "MASTER_PORT": str(master_port),
                       "RANK": str(rank), "WORLD_SIZE": str(world_size)})
    if use_gpu:
        import ray

        # Ray normally hides all but the worker's GPU (device 0); when it does not, pick the assigned one.
        torch.cuda.set_device(0 if torch.cuda.device_count() == 1 else visible_index(str(ray.get_gpu_ids()[0])))
    dist.init_process_group("nccl" if use_gpu else "gloo", rank=rank, world_size=world_size)


class DistributedWorker:
    """Base of the actors of a ``WorkerGroup``: rank bookkeeping and the torch.distributed rendezvous. Subclasses
    build their state in ``setup``, which runs once the process group exists."""

    def __init__(self, rank: int, world_size: int, use_gpu: bool) -> None:
        self.rank, self.world_size, self.use_gpu = rank, world_size, use_gpu

    def rendezvous(self) -> tuple[str, int]:
        """This node's address and a free port on it (asked of rank 0, whose process hosts the store)."""
        import ray

        return ray.util.get_node_ip_address(), free_port()

    def join(self, master_addr: str, master_port: int) -> None:
        init_process_group(self.rank, self.world_size, master_addr, master_port, self.use_gpu)
        self.setup()

    def setup(self) -> None:
        """Build what the worker holds (collectives allowed)."""

    def whereabouts(self) -> tuple[str, int]:
        """This worker's node address and process id."""
        import ray

        return ray.util.get_node_ip_address(), os.getpid()


class WorkerGroup:
    """``num_workers`` Ray actors of a ``DistributedWorker`` subclass, constructed with rank, world size, use_gpu
    and ``kwargs``, then joined into one process group at rank 0's node."""

    def __init__(
        self,
        worker_cls: type,
        num_workers: int,
        use_gpu: bool,
        cpus_per_worker: float = 1.0,
        **kwargs: Any,
    ) -> None:
        import ray
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        init_ray()
        bundle = {"CPU": cpus_per_worker, **({"GPU": 1} if use_gpu else {})}
        self.placement = placement_group([dict(bundle) for _ in range(num_workers)], strategy="PACK")
        ray.get(self.placement.ready(), timeout=600)
        remote_cls = ray.remote(num_cpus=cpus_per_worker, num_gpus=1 if use_gpu else 0)(worker_cls)
        self.workers = [
            remote_cls.options(
                scheduling_strategy=PlacementGroupSchedulingStrategy(self.placement, placement_group_bundle_index=i)
            ).remote(rank=i, world_size=num_workers, use_gpu=use_gpu, **kwargs)
            for i in range(num_workers)
        ]
        self.kind, self.where = worker_cls.__name__, [("?", "?")] * num_workers
        self.where = self.call_all("whereabouts")
        master_addr, master_port = self.call_one("rendezvous")
        self.call_all("join", master_addr, master_port)
        log.info("%d %s workers ready (%s)", num_workers, worker_cls.__name__, "GPU" if use_gpu else "CPU")

    def __len__(self) -> int:
        return len(self.workers)

    def call_all(self, method: str, *args: Any, **kwargs: Any) -> list:
        return self._gather(method, [getattr(w, method).remote(*args, **kwargs) for w in self.workers])

    def call_one(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call rank 0 only (for a method that touches no collective)."""
        return self._gather(method, [getattr(self.workers[0], method).remote(*args, **kwargs)])[0]

    def call_each(self, method: str, shards: Sequence[tuple]) -> list:
        """Worker i runs ``method(*shards[i])``."""
        import ray

        if len(shards) != len(self.workers):
            raise ValueError(f"{len(shards)} shards for {len(self.workers)} workers")
        return self._gather(method, [getattr(w, method).remote(*shard) for w, shard in zip(self.workers, shards)])

    def _gather(self, method: str, refs: list) -> list:
        """Results in rank order. Refs are taken as they finish: a rank that died is reported at once instead of
        after the survivors' collective times out waiting for it."""
        import ray
        from ray.exceptions import RayActorError

        pending = dict(zip(refs, range(len(refs))))
        results: dict[int, Any] = {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            rank = pending.pop(ready[0])
            try:
                results[rank] = ray.get(ready[0])
            except RayActorError as exc:
                node, pid = self.where[rank]
                raise WorkerLost(f"{self.kind} rank {rank} (node {node}, pid {pid}) died during {method}: "
                                 f"{ray_error_summary(exc)}") from exc
        return [results[rank] for rank in range(len(refs))]

    def shutdown(self) -> None:
        import ray
        from ray.util.placement_group import remove_placement_group

        for worker in self.workers:
            ray.kill(worker)
        remove_placement_group(self.placement)
        self.workers = []
