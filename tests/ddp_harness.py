"""Run a function in several CPU processes joined by a gloo process group, for DDP tests.

Usage from a test module (the function must be defined at module level so that the spawned
processes can import it by name)::

    from ddp_harness import run_ddp        # tests/ must be on sys.path, see below

    def _worker(rank, world_size, x):
        ...                                 # torch.distributed is initialised here
        return {'loss': loss, 'grad': x.grad}

    results = run_ddp(_worker, 2, x)       # results[r] is rank r's return value

``fn(rank, world_size, *args)`` runs in each process with a gloo group already initialised
(and destroyed afterwards, also on error). Its return value may be a tensor or any nesting of
lists, tuples and dicts of tensors and plain Python values; tensors come back to the parent
detached, on the CPU. An exception in a worker is re-raised in the parent with the worker's
traceback (``torch.multiprocessing.ProcessRaisedException``); a worker that hangs (e.g. one
rank skipped a collective) is killed after ``timeout`` seconds and ``TimeoutError`` raised.

Rendezvous goes through a file store in a fresh temporary directory rather than a TCP port:
"pick a free port, close it, hand it to the workers" races with any other process on the
machine binding that port in between; a file is private to this call. Gloo is pinned to the
loopback interface so that no network configuration is needed.

Test modules under ``tests/<sub>/`` import this file as ``ddp_harness``; if ``tests/`` is not
on ``sys.path`` (no conftest adds it) they insert it themselves.
"""
import os
import tempfile
import time
from typing import Any, Callable, List

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

__all__ = ['run_ddp']

DEFAULT_TIMEOUT = 120.0


def _to_cpu(obj: Any) -> Any:
    """Detach and move every tensor of a nested structure to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _worker(rank: int, world_size: int, store_path: str, out_dir: str, fn: Callable,
            args: tuple) -> None:
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{store_path}', rank=rank,
                            world_size=world_size)
    try:
        result = fn(rank, world_size, *args)
        dist.barrier()
    finally:
        dist.destroy_process_group()
    # Write then rename, so the parent never reads a half-written file.
    tmp = os.path.join(out_dir, f'rank{rank}.pt.tmp')
    torch.save(_to_cpu(result), tmp)
    os.replace(tmp, os.path.join(out_dir, f'rank{rank}.pt'))


def run_ddp(fn: Callable, world_size: int = 2, *args: Any,
            timeout: float = DEFAULT_TIMEOUT) -> List[Any]:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` gloo CPU processes.

    Args:
        fn: A module-level (picklable) function; ``torch.distributed`` is initialised when
            it runs.
        world_size: Number of processes.
        *args: Extra positional arguments, pickled to every process (tensors included).
        timeout: Seconds (keyword only) after which all workers are killed and
            ``TimeoutError`` is raised.

    Returns:
        The list of the ranks' return values, index = rank, tensors detached on the CPU.
    """
    # Workers inherit the environment: one thread each, gloo on loopback.
    env = {'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'GLOO_SOCKET_IFNAME': 'lo'}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with tempfile.TemporaryDirectory(prefix='imbfocal_ddp_') as tmp:
            store_path = os.path.join(tmp, 'store')
            ctx = mp.spawn(_worker, args=(world_size, store_path, tmp, fn, args),
                           nprocs=world_size, join=False)
            deadline = time.monotonic() + timeout
            try:
                while not ctx.join(timeout=max(0.0, deadline - time.monotonic())):
                    if time.monotonic() >= deadline:
                        raise TimeoutError(f'DDP workers did not finish within {timeout} s')
            finally:
                for proc in ctx.processes:
                    if proc.is_alive():
                        proc.kill()
                        proc.join(5)
            return [torch.load(os.path.join(tmp, f'rank{r}.pt'), weights_only=False)
                    for r in range(world_size)]
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
