"""Where the per-file work runs: in this process, in a local process pool, or on a Dask cluster.

Every use case hands its per-file work to a `concurrent.futures.Executor`, so the same
code runs on a laptop and on a cluster: a Dask client's `get_executor()` is one
(DESIGN.md, "Scale"). The case store itself is written by the calling process only.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from typing import Any

from sensorprint.errors import SensorprintError


class InlineExecutor(Executor):
    """Runs each task at once in the calling process (workers=1): simplest to debug, no pickling."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(error)
        return future


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def all_cores_for_blas() -> Iterator[None]:
    """While the block runs, BLAS in this process may use every core (`default_workers`).

    For the large matrix products the calling process makes while its workers wait (the
    signature screening of `cluster`): OPENBLAS_NUM_THREADS=1, set to keep a pool's workers
    from oversubscribing the cores, would otherwise hold that product to one core too.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=default_workers(), user_api="blas"):
        yield


@contextlib.contextmanager
def open_executor(workers: int | None = None, scheduler: str | None = None) -> Iterator[Executor]:
    """An executor for per-file work.

    scheduler: address of a Dask scheduler (``tcp://host:8786``); the work then runs on
    that cluster, whose workers must see the same evidence and case paths.
    workers: local processes when no scheduler is given (default: one per core; 1 runs inline).
    """
    if scheduler:
        try:
            from distributed import Client
        except ImportError as error:  # pragma: no cover - dask is a declared dependency
            raise SensorprintError("Dask is not installed: pip install 'dask[distributed]'") from error
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as error:
            raise SensorprintError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from error
        try:
            yield client.get_executor()
        finally:
            client.close()
        return
    workers = workers or default_workers()
    if workers <= 1:
        yield InlineExecutor()
        return
    # fork keeps start-up cheap (numpy/scipy already imported); torch is only imported lazily by the CNN path
    context = multiprocessing.get_context("fork") if hasattr(os, "fork") else None
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=watch_parent, initargs=(os.getpid(),)
    ) as pool:
        yield pool


def watch_parent(parent_pid: int, interval_s: float = 0.5) -> None:
    """In a worker: end this process when the process that started it is gone (killed with SIGKILL).

    A pool's workers are not told when their parent is killed; each would go on holding
    hundreds of MB. A daemon thread polls the parent id every `interval_s` seconds.
    """
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval_s)
        os._exit(1)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def share(executor: Executor, value: Any) -> Any:
    """A large input that every task takes, sent to each worker once instead of with every task.

    On a Dask cluster the value is scattered to every worker (broadcast) and a future stands
    for it in the tasks (Dask resolves it on the worker, from the worker's own memory); a
    local executor gets the value itself (a process pool pickles it per task, as before).
    """
    client = getattr(executor, "_client", None)  # distributed's ClientExecutor
    if client is None or value is None:
        return value
    # in a list: scatter takes a dict or a list as many values, one future each
    return client.scatter([value], broadcast=True, hash=False)[0]


def completed(executor: Executor, fn: Callable[..., Any], tasks: Iterable[tuple], *, window: int) -> Iterator[Any]:
    """Results of fn(*task) for every task, as they complete, with at most `window` in flight.

    The window keeps memory bounded on large scans, and lets the caller commit each result
    before the next task starts when work runs inline (a scan killed mid-way then loses
    at most the task in progress).
    """
    pending: set[Future] = set()
    for task in tasks:
        pending.add(executor.submit(fn, *task))
        if len(pending) >= window:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            yield future.result()


def window_for(workers: int | None, scheduler: str | None) -> int:
    """How many tasks to keep in flight: two per local worker, more for a cluster."""
    if scheduler:
        return 256
    return 2 * (workers or default_workers())
