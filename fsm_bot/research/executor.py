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
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from fsm_bot import stopping
from fsm_bot.errors import ConfigError, EnvironmentFailure


class Inline(cf.Executor):
    """Runs each call at once, in this process: one worker, nothing pickled (tests, profiles)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        stopping.check()  # after a stop, nothing more is started
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
    with cf.ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("forkserver"),
                                initializer=watch_parent, initargs=(os.getpid(),)) as pool:
        try:
            yield pool
        except BaseException:  # a stop or a failure: the chunks in flight are not waited for
            stop_workers(pool)
            raise


PARENT_POLL_SECS = 1.0


def watch_parent(parent: int) -> None:
    """A local worker's initializer: the worker ends itself within ``PARENT_POLL_SECS`` of the process that
    started the pool ending, however that ended (a SIGKILL, the OOM killer, a supervisor's stop timeout). Its
    own parent is the fork server, not that process, so it watches that process by its pid."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the whole group: the parent decides

    def watch() -> None:
        while _alive(parent):
            time.sleep(PARENT_POLL_SECS)
        os._exit(1)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs: not gone, and not a zombie left dead until its own parent reaps it (Linux's /proc
    says; elsewhere a signal 0 does)."""
    if Path("/proc/self/stat").exists():
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or the pid taken by another user's process
        return False
    return True


def stop_workers(pool: cf.ProcessPoolExecutor) -> None:
    """End a local pool's workers now (the chunk each is running is lost; nothing of it was kept)."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
