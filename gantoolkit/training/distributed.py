"""Training on several processes with torch.distributed: launching, process groups, data shards, gradient averaging.

`gantool train --nproc-per-node N ...` starts N workers through torch.distributed's own launcher (torchrun's
`torch.distributed.run`), each running `python -m gantoolkit train ...` with the same arguments;
`torchrun --nproc-per-node N -m gantoolkit train ...` does the same by hand. A worker knows it is one of several
from the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK) and then:

- joins the process group: NCCL on CUDA (device cuda:LOCAL_RANK), gloo on the CPU; a second, gloo group carries
  small control messages (the run directory, stop requests, RNG states) without touching the GPU;
- starts from the same weights (same seed, then a broadcast from rank 0);
- takes its slice of every batch: all ranks draw the same permutation of the data, and rank r takes the r-th of
  `world_size` equal parts of each batch, so `--batch-size` is the global batch and the data order stays the
  single-process one (deterministic and resumable);
- draws its own noise (latents, labels, interpolation weights) from its own seed;
- averages the gradients of each network over all ranks after every backward pass and before the optimizer step.

Gradients are averaged explicitly (one flat all-reduce per update, as StyleGAN2-ADA and StyleGAN3 do) rather than
through DistributedDataParallel: a GAN step calls the critic several times before one backward pass (real, fake and
the gradient penalty's interpolates, whose double backward DDP does not support through `torch.autograd.grad`), uses
the critic without updating it in the generator step, and may train controller heads outside the critic's forward.
Averaging the gradients the backward pass produced is correct in all of these cases; tests check it against a single
process on the whole batch.

Only rank 0 writes the run directory (checkpoints, samples, metrics) and prints; checkpoints hold rank 0's models
(identical on every rank) plus every rank's RNG states, so a run resumes bit for bit with the same number of
processes, and any single process can load, sample from or resume it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from rich.console import Console

from gantoolkit.errors import ConfigError, GanToolkitError
from gantoolkit.training.progress import Monitor

#: torchrun's options that `gantool train` passes through to it (flag name -> torchrun option)
LAUNCH_OPTIONS = {
    "nproc_per_node": "--nproc-per-node",
    "nnodes": "--nnodes",
    "node_rank": "--node-rank",
    "rdzv_backend": "--rdzv-backend",
    "rdzv_endpoint": "--rdzv-endpoint",
    "rdzv_id": "--rdzv-id",
}
#: rank r's RNG is seeded with seed + r * RANK_SEED_STRIDE (rank 0 keeps the single-process seed)
RANK_SEED_STRIDE = 2**32

#: how long the other ranks wait for a failed rank 0 to report and exit before exiting themselves (torchrun stops
#: them as soon as rank 0 has exited, so this costs nothing; 10 s was too short for a loaded 2-core machine)
MAIN_FAILURE_GRACE_S = 30.0

T = TypeVar("T")


@dataclass
class _Failure:
    """Set when every rank met the same error: the processes then leave without meeting at the teardown barrier.
    Rank 0 waiting there for the others (who are waiting for it to exit) let a non-main rank exit first."""

    leave_at_once: bool = False


_FAILURE = _Failure()


class DistributedError(GanToolkitError):
    """A distributed run could not start or one of its processes failed."""


@dataclass(frozen=True)
class Processes:
    """Where this process stands among the processes of a run (one process: rank 0 of 1, no groups)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    control: Any = None  # a gloo process group for small CPU-side messages

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def rank_seed(self, seed: int) -> int:
        """A seed of this rank's own: `seed` itself on rank 0."""
        return seed + self.rank * RANK_SEED_STRIDE

    # -- collectives (no-ops on one process) -------------------------------------------------------------------

    def broadcast_parameters(self, *modules: torch.nn.Module) -> None:
        """Give every rank rank 0's parameters and buffers."""
        if not self.active:
            return
        import torch.distributed as dist

        for module in modules:
            for t in [*module.parameters(), *module.buffers()]:
                dist.broadcast(t.data, src=0)

    def average_gradients(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Replace each gradient with its mean over all ranks (one flat all-reduce; no host sync)."""
        if not self.active:
            return
        import torch.distributed as dist
        from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = _flatten_dense_tensors(grads)
        dist.all_reduce(flat)
        flat.div_(self.world_size)
        for grad, mean in zip(grads, _unflatten_dense_tensors(flat, grads), strict=True):
            grad.copy_(mean)

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean of a tensor over all ranks (for logged losses)."""
        if not self.active:
            return values
        import torch.distributed as dist

        values = values.clone()
        dist.all_reduce(values)
        return values.div_(self.world_size)

    def first_step(self, step: torch.Tensor) -> torch.Tensor:
        """The smallest non-negative step over all ranks (-1 when every rank holds -1)."""
        if not self.active:
            return step
        import torch.distributed as dist

        big = torch.iinfo(step.dtype).max
        value = torch.where(step < 0, torch.full_like(step, big), step)
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return torch.where(value == big, torch.full_like(value, -1), value)

    def any(self, flag: bool) -> bool:
        """True on every rank when `flag` is true on any (through the CPU control group)."""
        if not self.active:
            return flag
        import torch.distributed as dist

        value = torch.tensor([int(flag)], dtype=torch.int32)
        dist.all_reduce(value, op=dist.ReduceOp.MAX, group=self.control)
        return bool(value.item())

    def from_main(self, value: Any) -> Any:
        """Rank 0's `value` on every rank (a small picklable object, through the CPU control group)."""
        if not self.active:
            return value
        import torch.distributed as dist

        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def gather_states(self, state: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's copy of a uint8 state tensor (an RNG state), in rank order, on every rank."""
        if not self.active:
            return [state]
        import torch.distributed as dist

        state = state.cpu()
        out = [torch.empty_like(state) for _ in range(self.world_size)]
        dist.all_gather(out, state, group=self.control)
        return out


    @contextlib.contextmanager
    def errors_from_main(self) -> Iterator[None]:
        """Errors every rank meets alike (an interruption, a NaN) are reported by rank 0 alone; the other ranks exit
        quietly with the same exit code."""
        try:
            yield
        except GanToolkitError as e:
            _FAILURE.leave_at_once = True
            if self.is_main:
                raise
            time.sleep(MAIN_FAILURE_GRACE_S)  # rank 0 reports and exits first (torchrun then stops this process)
            raise SystemExit(e.exit_code) from None

    def main_first(self, work: Callable[[], T]) -> T:
        """`work()` on rank 0, then on the other ranks once it has succeeded: what rank 0 downloads or caches, they
        read rather than fetch or decode again. When it fails on rank 0, the others exit quietly with its exit code."""
        if not self.active:
            return work()
        done: list[T] = []
        self.run_on_main(lambda: done.append(work()))
        return done[0] if self.is_main else work()

    def run_on_main(self, work: Callable[[], T]) -> T:
        """`work()` on rank 0 (creating the run directory, say), its result on every rank. When it fails, rank 0
        raises the error and the other ranks exit quietly with its exit code rather than wait for it forever."""
        if not self.active:
            return work()
        result: Any = None
        failure: BaseException | None = None
        if self.is_main:
            try:
                result = work()
            except BaseException as e:  # re-raised below, once the other ranks are told
                failure = e
        outcome = self.from_main(("failed", getattr(failure, "exit_code", 1)) if failure else ("ok", result))
        if outcome[0] == "failed":
            _FAILURE.leave_at_once = True
        if failure is not None:
            raise failure
        if outcome[0] == "failed":  # let rank 0 report and exit first (torchrun then stops this process)
            time.sleep(MAIN_FAILURE_GRACE_S)
            raise SystemExit(outcome[1])
        return outcome[1]


SINGLE = Processes()


def launched() -> bool:
    """True inside a worker that torchrun started as one of several processes."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def setup(device: torch.device) -> tuple[Processes, torch.device]:
    """Join the process group when torchrun started several processes; returns where we stand and our device.

    CUDA: NCCL on cuda:LOCAL_RANK; CPU: gloo. One process: (SINGLE, device), nothing initialised.
    """
    if not launched():
        return SINGLE, device
    import torch.distributed as dist

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise DistributedError(
                f"local rank {local_rank} has no GPU of its own ({torch.cuda.device_count()} visible)",
                "use at most one process per GPU: --nproc-per-node <= the number of GPUs",
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise ConfigError(f"several processes need CUDA (NCCL) or the CPU (gloo), not {device.type}",
                          "use --device cuda or --device cpu")
    if not dist.is_initialized():
        kwargs: dict[str, Any] = {"device_id": device} if backend == "nccl" else {}
        dist.init_process_group(backend, rank=rank, world_size=world, **kwargs)
    control = dist.new_group(backend="gloo") if backend != "gloo" else dist.group.WORLD
    processes = Processes(rank, local_rank, world, control)
    atexit.register(teardown, processes)
    return processes, device


#: how long a process waits at exit for the others before leaving the group anyway
TEARDOWN_WAIT_S = 30


def teardown(processes: Processes) -> None:
    """Leave the process group (after the last collective of the run). The processes first meet at a barrier on
    the gloo control group: a rank that destroyed its group while a peer was still in gloo's teardown aborted with
    "terminate called without an active exception" after a finished run. The barrier is monitored and bounded, so a
    peer that failed (or never arrives) costs at most TEARDOWN_WAIT_S seconds, not a hang. After an error every rank
    met, nobody waits: rank 0 exits first with its error and torchrun stops the others."""
    if processes.active and not _FAILURE.leave_at_once:
        import datetime

        import torch.distributed as dist

        if dist.is_initialized():
            with contextlib.suppress(RuntimeError):  # a peer failed or left: leave all the same
                dist.monitored_barrier(group=processes.control,
                                       timeout=datetime.timedelta(seconds=TEARDOWN_WAIT_S))
            dist.destroy_process_group()


def check_config(processes: Processes, config: Any) -> None:
    """What a run on several processes cannot do."""
    if not processes.active:
        return
    if config.batch_size % processes.world_size:
        raise ConfigError(
            f"--batch-size {config.batch_size} does not split evenly over {processes.world_size} processes",
            f"use a multiple of {processes.world_size} (--batch-size is the batch of all processes together)",
        )
    if config.on_nan == "rollback":
        raise ConfigError("--on-nan rollback is not supported on several processes yet", "use --on-nan stop")


def is_main_process() -> bool:
    """False in the workers of a distributed run other than rank 0 (they print nothing)."""
    return not launched() or os.environ.get("RANK") == "0"


def shard(batch: torch.Tensor, processes: Processes) -> torch.Tensor:
    """This rank's equal part of a (global) batch of indices or examples."""
    if not processes.active:
        return batch
    size = len(batch) // processes.world_size
    return batch[processes.rank * size : (processes.rank + 1) * size]


class SilentMonitor(Monitor):
    """The monitor of ranks other than 0: no progress display, no metrics log."""

    def __enter__(self) -> SilentMonitor:
        return self

    def advance(self, step: int) -> None:
        pass

    def log(self, step: int, values: dict[str, float]) -> None:
        pass

    def rewind(self, record: dict[str, Any]) -> None:
        pass

    def note(self, message: str) -> None:
        pass


def monitor_for(processes: Processes, metrics_path: Path, total: int, start: int, console: Console) -> Monitor:
    """Rank 0's progress display and metrics log; the other ranks show and write nothing."""
    return (Monitor if processes.is_main else SilentMonitor)(metrics_path, total, start, console)


# -- launching ----------------------------------------------------------------------------------------------------


def worker_arguments(values: dict[str, Any], skip: Iterable[str] = ()) -> list[str]:
    """The command-line arguments that reproduce `values` (a command's parameters by name) for the workers."""
    skipped = set(skip)
    args: list[str] = []
    for name, value in values.items():
        if value is None or name in skipped:
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + name.replace("_", "-"))
        elif isinstance(value, (list, tuple)):
            for item in value:
                args += [flag, str(item)]
        else:
            args += [flag, str(value)]
    return args


def torchrun_arguments(options: dict[str, Any], command: Sequence[str]) -> list[str]:
    """torchrun's argument list for running `python -m gantoolkit COMMAND...` on every worker."""
    args: list[str] = []
    for name, flag in LAUNCH_OPTIONS.items():
        value = options.get(name)
        if value is not None:
            args += [flag, str(value)]
    if options.get("rdzv_endpoint") and not options.get("rdzv_backend"):
        args += ["--rdzv-backend", "c10d"]  # the rendezvous torchrun documents for several nodes
    return [*args, "-m", "gantoolkit", *command]


def launch(options: dict[str, Any], command: Sequence[str]) -> None:
    """Run `gantool COMMAND...` on `--nproc-per-node` workers (times `--nnodes`) through torch.distributed.run.

    Returns when every worker has finished; a failed worker becomes one DistributedError line with its exit code
    (its own error is printed above by the worker)."""
    if launched():
        raise DistributedError("--nproc-per-node was given inside a process that torchrun already started",
                               "give --nproc-per-node to torchrun or to gantool train, not both")
    nproc = options.get("nproc_per_node")
    if not isinstance(nproc, int) or nproc < 1:
        raise ConfigError(f"--nproc-per-node must be at least 1, got {nproc}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default for several workers, without its banner
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    if os.environ.get("GANTOOL_DEBUG", "") in ("", "0") and "--debug" not in sys.argv:
        # the workers print their own errors and this launcher one summary line; torchrun's log repeats them
        for name in list(logging.root.manager.loggerDict):
            if name.startswith("torch.distributed"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
    argv = torchrun_arguments(options, command)
    try:
        run(parse_args(argv))
    except SignalException as e:  # Ctrl-C or SIGTERM: the workers finished their step and saved a checkpoint
        error = DistributedError(f"interrupted ({e.sigval.name}); the workers' messages above say what was saved")
        error.exit_code = 130
        raise error from None
    except ChildFailedError as e:
        codes = {rank: failure.exitcode for rank, failure in sorted(e.failures.items())}
        failed = ", ".join(f"rank {rank} with exit code {code}" for rank, code in codes.items())
        error = DistributedError(
            f"the distributed run failed: {failed} (see the errors above)",
            "fix that error and run again; a run directory already written can be continued with --resume",
        )
        # a worker's own exit code (2: a mistake, 3: training failed, 130: interrupted); negative ones are signals
        # the launcher sent to stop the others
        error.exit_code = max([c for c in codes.values() if c > 0], default=1)
        raise error from None
    except ValueError as e:  # torchrun's own checks of its options
        raise ConfigError(f"torch.distributed.run refused the launch options: {e}") from None
    finally:
        sys.stdout.flush()
