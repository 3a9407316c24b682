"""Where research work runs: this process (``workers=1``), this machine's cores (local processes, the
default) or a Dask cluster (``cluster="tcp://host:8786"``). Each is a ``concurrent.futures.Executor``, so a
backtest's chunks and a sweep's trials are submitted the same way whatever runs them; the work itself must
be a module-level function of picklable arguments.

Dask distributed rather than Ray: it is a pure-Python install (two wheels, no daemon, no object store),
its scheduler and workers are one command each (``dask scheduler``, ``dask worker ADDRESS``), and its
client hands out a standard ``Executor`` (``Client.get_executor``), so nothing here depends on it beyond
these lines.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from fsm_bot.errors import ConfigError, EnvironmentFailure


class Inline(cf.Executor):
    """Runs each call at once, in this process: one worker, nothing pickled (tests, profiles)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller by future.result(), as a pool would
            future.set_exception(exc)
        return future


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextmanager
def executor(workers: int | None = None, cluster: str | None = None) -> Iterator[cf.Executor]:
    """An executor for research work; ``workers`` counts local processes (default: every core)."""
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers {workers}: at least 1")
    if cluster:
        try:
            from distributed import Client
        except ImportError:
            raise EnvironmentFailure("--cluster needs Dask distributed: pip install -e '.[research]'") from None
        try:
            client = Client(cluster, timeout="10s", set_as_default=False)
        except OSError as exc:
            raise EnvironmentFailure(f"--cluster {cluster}: no Dask scheduler answers there ({exc})") from None
        try:
            yield client.get_executor()
        finally:
            client.close()
        return
    n = workers or cores()
    if n == 1:
        yield Inline()
        return
    # forkserver: a fresh interpreter per worker, not a fork of a process that may hold threads and locks
    with cf.ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("forkserver")) as pool:
        yield pool
