"""Data-parallel training under ``torchrun``: what changes when a run has several processes.

A run started by ``torchrun`` (``env://`` rendezvous: ``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR``...)
or inside an initialized ``torch.distributed`` process group is *data-parallel*:

- the model is wrapped in ``DistributedDataParallel`` (gloo on CPU, NCCL on CUDA) for the
  training forward and backward only; ``state.model`` stays the plain module, so methods and
  checkpoints see the same model as in a single process;
- every rank reads its contiguous part of each global batch, in the same epoch order (the
  source's ``batch_size`` stays the global batch, so a recipe means the same at any world size);
- step, sample and token counters are global (summed over ranks every step);
- evaluation runs on a shard per rank and the metrics' ``sums`` are added up;
- only rank 0 writes the store and checkpoints; a checkpoint holds every rank's RNG state;
- recorded times are the slowest rank's, and ``communication`` (seconds in gradient
  all-reduces, from a DDP communication hook) is kept with the run.

Nothing here launches processes: ``torchrun`` (or Ray, or a cluster scheduler) does that.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import torch
from torch import nn

from hasten.core.algorithm import Algorithm
from hasten.core.metrics import Metric
from hasten.errors import ConfigError, HastenError
from hasten.trainer import checkpoint as ckpt


def launched() -> bool:
    """Whether this process is one of several (``torchrun`` set ``WORLD_SIZE`` > 1, or a process
    group of more than one is already initialized)."""
    if _initialized():
        return torch.distributed.get_world_size() > 1
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def _initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def local_device(device: torch.device) -> torch.device:
    """A CUDA device without an index means this process's own GPU (``LOCAL_RANK``) in a launched run."""
    if device.type == "cuda" and device.index is None and launched():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def join(device: torch.device | str = "cpu") -> "Replicas":
    """This process's place in the run: a process group is initialized (``env://``) if the launcher
    started several processes and none exists yet. A single process gets ``Replicas()``."""
    if not launched():
        return Replicas()
    device = torch.device(device)
    if not _initialized():
        if not torch.distributed.is_available():
            raise ConfigError(
                "this PyTorch build has no torch.distributed", "install a PyTorch build with distributed support"
            )
        for name in ("MASTER_ADDR", "MASTER_PORT", "RANK"):
            if name not in os.environ:
                raise ConfigError(
                    f"WORLD_SIZE is set but {name} is not: the processes cannot find each other",
                    "start the run with torchrun (it sets the rendezvous variables)",
                )
        if device.type == "cuda":
            torch.cuda.set_device(local_device(device))
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    group = torch.distributed
    return Replicas(rank=group.get_rank(), world_size=group.get_world_size(), backend=str(group.get_backend()))


def refuse_unsupported(algorithms: Sequence[Algorithm]) -> None:
    """One line naming every method that does not declare data-parallel support, before any work."""
    refused = [a for a in algorithms if getattr(a, "data_parallel", None) is not True]
    if not refused:
        return
    why = "; ".join(
        f"{a.name}: {getattr(a, 'data_parallel_note', '') or 'does not declare data_parallel'}" for a in refused
    )
    raise ConfigError(
        f"{', '.join(a.name for a in refused)} cannot run data-parallel ({why})",
        "drop that method, or train in one process (without torchrun)",
    )


@dataclass
class Replicas:
    """The processes of one data-parallel run, as the Trainer uses them (world size 1: a plain run)."""

    rank: int = 0
    world_size: int = 1
    backend: str | None = None

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def writer(self) -> bool:
        """Rank 0 writes the store and checkpoints."""
        return self.rank == 0

    # --------------------------------------------------------------- data
    def shard_train(self, source: Any) -> Any:
        """This rank's part of every global batch of a batch source, same order on every rank."""
        if not self.active:
            return source
        if callable(getattr(source, "shard", None)):
            return source.shard(self.rank, self.world_size)
        if _already_sharded(source):
            return source
        return SlicedSource(source, self.rank, self.world_size)

    def shard_eval(self, data: Any, metrics: dict[str, Metric]) -> Any:
        """This rank's part of the eval set, when every metric can be summed over parts."""
        if not self.active or data is None or not all(m.sums for m in metrics.values()):
            return data
        if callable(getattr(data, "shard", None)):
            return data.shard(self.rank, self.world_size)
        return EveryNth(data, self.rank, self.world_size)

    def check_batch(self, source: Any) -> None:
        """Refuse a global batch that does not split evenly: ranks would weigh samples unequally."""
        size = getattr(source, "batch_size", None)
        if self.active and isinstance(size, int) and size % self.world_size:
            raise ConfigError(
                f"the global batch of {size} samples does not split evenly over {self.world_size} processes",
                f"use a batch size divisible by {self.world_size}, or another number of processes",
            )

    # -------------------------------------------------------------- model
    def wrap(self, model: nn.Module, device: torch.device, timer: Any) -> nn.Module:
        """``model`` as the training forward uses it: a DDP wrapper whose gradient all-reduces are timed."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        ddp.register_comm_hook(timer, timed_allreduce)
        return ddp

    @staticmethod
    def accumulating(forward: nn.Module, last: bool) -> Any:
        """Skip the all-reduce on every micro-batch but the last (gradient accumulation)."""
        no_sync = getattr(forward, "no_sync", None)
        return no_sync() if no_sync is not None and not last else contextlib.nullcontext()

    def share_buffers(self, model: nn.Module) -> None:
        """Give every rank rank 0's buffers (BatchNorm running statistics) before an evaluation or a
        checkpoint: each rank's last forward updated them from its own part of the batch."""
        if not self.active:
            return
        for buffer in model.buffers():
            torch.distributed.broadcast(buffer.data, src=0)

    # --------------------------------------------------------- reductions
    def step_totals(self, loss: torch.Tensor, samples: int, tokens: int) -> tuple[torch.Tensor, int, int]:
        """The step's mean loss over ranks and its global samples and tokens, in one all-reduce: every
        rank then counts the same durations and sees the same loss (a diverged run stops everywhere)."""
        if not self.active:
            return loss, samples, tokens
        device = _comm_device(self, loss.device)
        totals = torch.stack(
            [
                loss.detach().double().to(device),
                torch.tensor(float(samples), dtype=torch.float64, device=device),
                torch.tensor(float(tokens), dtype=torch.float64, device=device),
            ]
        )
        torch.distributed.all_reduce(totals)
        mean_loss = (totals[0] / self.world_size).to(device=loss.device, dtype=loss.dtype)
        return mean_loss, int(totals[1]), int(totals[2])

    def sum_metrics(self, metrics: dict[str, Metric], device: torch.device) -> None:
        """Add up every metric's accumulators over ranks (each rank evaluated its shard)."""
        if not self.active or not all(m.sums for m in metrics.values()):
            return
        values = [float(getattr(m, name)) for m in metrics.values() for name in m.sums]
        total = torch.tensor(values, dtype=torch.float64, device=_comm_device(self, device))
        torch.distributed.all_reduce(total)
        flat = iter(total.tolist())
        for metric in metrics.values():
            for name in metric.sums:
                value = next(flat)
                setattr(metric, name, int(round(value)) if isinstance(getattr(metric, name), int) else value)

    def slowest(self, times: dict[str, float], device: torch.device) -> dict[str, float]:
        """Each time as the slowest rank's (a data-parallel step ends when the last rank ends it)."""
        if not self.active:
            return times
        keys = sorted(times)
        values = torch.tensor([float(times[k]) for k in keys], dtype=torch.float64, device=_comm_device(self, device))
        torch.distributed.all_reduce(values, op=torch.distributed.ReduceOp.MAX)
        return dict(zip(keys, values.tolist()))

    def describe_failure(self, error: BaseException) -> str:
        """The run's error line; a collective that failed because another process died says so."""
        text = f"{type(error).__name__}: {error}"
        lost = ("gloo", "NCCL", "Connection reset", "Connection closed", "Broken pipe", "timed out")
        if self.active and isinstance(error, RuntimeError) and any(word in str(error) for word in lost):
            reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
            return (
                f"another process of this {self.world_size}-process run stopped (the all-reduce failed:"
                f" {reason}); torchrun's output names the failed rank"
            )
        return text

    def on_writer(self, compute: Any) -> Any:
        """Run ``compute()`` on rank 0 and give every rank its result (or its error, raised on
        every rank, so all exit with the same line)."""
        if not self.active:
            return compute()
        box: list[Any] = [None]
        if self.writer:
            try:
                box[0] = ("ok", compute())
            except HastenError as exc:
                box[0] = ("error", exc)
        torch.distributed.broadcast_object_list(box, src=0)
        kind, value = box[0]
        if kind == "error":
            raise value
        return value

    # -------------------------------------------------------- checkpoints
    def gather_rank_states(self, algorithms: Sequence[Algorithm]) -> list[dict[str, Any]] | None:
        """What each rank must resume with that may differ from rank 0's, gathered on rank 0 (None
        elsewhere); collective. Every rank's RNG state, and its methods' states where they differ
        from rank 0's (a data-echoing cache holds this rank's own batch); equal states are sent as a
        fingerprint only, so a method with a copy of the model (EMA) is not sent once per rank."""
        if not self.active:
            return None
        states = [a.state_dict() for a in algorithms]
        mine = _fingerprint(states)
        prints: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(prints, mine)
        own = {"rng": ckpt.capture_rng(), "algorithms": states if mine != prints[0] else None}
        gathered: list[Any] | None = [None] * self.world_size if self.writer else None
        torch.distributed.gather_object(own, gathered, dst=0)
        return gathered

    def stamp(self, payload: dict[str, Any], rank_states: list[dict[str, Any]] | None) -> dict[str, Any]:
        """Add what a data-parallel checkpoint needs to resume: the world size and each rank's state."""
        payload["world_size"] = self.world_size
        if rank_states is not None:
            payload["rank_states"] = rank_states
        return payload

    def check_world(self, payload: dict[str, Any], run_id: str) -> None:
        """A run continues on as many processes as it started with: its data order per rank and its
        RNG streams depend on it."""
        saved = int(payload.get("world_size", 1))
        if saved != self.world_size:
            launch = "without torchrun" if saved == 1 else f"with torchrun --nproc_per_node {saved} (in all)"
            raise ConfigError(
                f"run {payload.get('run_id', run_id)} was trained on {saved} process(es), this launch has"
                f" {self.world_size}",
                f"resume it {launch}, or start a new run",
            )

    def restore_rank_state(self, payload: dict[str, Any], algorithms: Sequence[Algorithm]) -> None:
        """Each rank continues its own random streams, and its own method states where they differed."""
        states = payload.get("rank_states")
        if not self.active or not states:
            return
        mine = states[self.rank]
        ckpt.restore_rng(mine["rng"])
        for algorithm, state in zip(algorithms, mine.get("algorithms") or ()):
            algorithm.load_state_dict(state)

    def stream_seed(self, seed: int) -> int | None:
        """The seed for this rank's own random streams (augmentation, dropout) once the model is
        built, or None to keep them: rank 0 keeps the single-process stream."""
        return (seed + 1_000_003 * self.rank) % 2**63 if self.active and self.rank > 0 else None


def timed_allreduce(timer, bucket):  # type: ignore[no-untyped-def]  # DDP checks the annotations, none given
    """DDP's own all-reduce of a gradient bucket, timed from launch to completion (overlapping the
    rest of backward) and added to the timer's ``communication``. On CUDA the future completes when
    the collective is enqueued, so use the profiler's trace for communication on GPUs."""
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    started = time.perf_counter()
    future = allreduce_hook(None, bucket)  # type: ignore[arg-type]  # None: the default process group

    def done(fut: torch.futures.Future[torch.Tensor]) -> torch.Tensor:
        timer.add_communication(time.perf_counter() - started)
        return fut.value()

    return future.then(done)


def _fingerprint(value: Any) -> str:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def _comm_device(replicas: Replicas, device: torch.device) -> torch.device:
    return device if replicas.backend == "nccl" else torch.device("cpu")


def _already_sharded(source: Any) -> bool:
    """A DataLoader with a DistributedSampler already gives each rank its own samples."""
    from torch.utils.data.distributed import DistributedSampler

    data = getattr(source, "data", source)
    return isinstance(getattr(data, "sampler", None), DistributedSampler)


def _part(value: Any, rank: int, world_size: int) -> Any:
    if isinstance(value, torch.Tensor) and value.ndim > 0:
        return torch.tensor_split(value, world_size)[rank]
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(_part(v, rank, world_size) for v in value)
    if isinstance(value, dict):
        return {k: _part(v, rank, world_size) for k, v in value.items()}
    return value


class SlicedSource:
    """Any batch source, each global batch cut into ``world_size`` contiguous parts; this rank
    gets part ``rank``. Every rank reads the whole batch (the source cannot do less), so sources
    that can read only their part implement ``shard(rank, world_size)`` instead."""

    def __init__(self, source: Any, rank: int, world_size: int) -> None:
        object.__setattr__(self, "_inner", source)
        object.__setattr__(self, "_rank", rank)
        object.__setattr__(self, "_world_size", world_size)

    def __len__(self) -> int:
        return len(self._inner)

    def batches(self, epoch: int, start: int = 0) -> Iterator[Any]:
        for batch in self._inner.batches(epoch, start):
            yield _part(batch, self._rank, self._world_size)

    def sample_indices(self, epoch: int, index: int) -> Any:
        """Dataset indices of this rank's part of a batch, if the source can say (alternating flip)."""
        indices = self._inner.sample_indices(epoch, index)  # AttributeError if it cannot: as without a wrapper
        return None if indices is None else _part(indices, self._rank, self._world_size)

    def __getattr__(self, name: str) -> Any:  # batch_size, tokens_in, mask_rate...: the source's own
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:  # e.g. a masking schedule setting mask_rate
        setattr(self._inner, name, value)


class EveryNth:
    """Every ``world_size``-th batch of an eval iterable, from batch ``rank``."""

    def __init__(self, data: Iterable, rank: int, world_size: int) -> None:
        self.data, self.rank, self.world_size = data, rank, world_size

    def __iter__(self) -> Iterator[Any]:
        for index, batch in enumerate(self.data):
            if index % self.world_size == self.rank:
                yield batch
