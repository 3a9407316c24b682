"""A fork server for the crash tests' ``fsm-bot`` processes: the interpreter and fsm_bot's imports (polars,
numpy, TA-Lib: 0.25 s of each fresh process here) are paid once, and each command is a child forked from them.

Each command is still a process of its own: its own pid, environment, working directory and files for
stdout and stderr, killed by a real SIGKILL at its failpoint and reported as ``-9``, as ``subprocess`` would.
The server forks one handler per request (so it never runs a thread) and the handler forks the command
and waits for it; the server imports but computes nothing, so no library's worker threads exist when it
forks (polars starts its pool on first use).

    python -m tests.zygote SOCKET      # prints "ready" once it listens

``Zygote.run(argv, env=..., cwd=..., timeout=...)`` answers a ``subprocess.CompletedProcess``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Mapping


def serve(path: str) -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # numpy's BLAS: no worker thread to lose in a fork
    import fsm_bot.entry  # noqa: F401  (the console script's handlers, then everything a command imports)
    import fsm_bot.adapters.sim  # noqa: F401
    import fsm_bot.engine  # noqa: F401
    import fsm_bot.runner  # noqa: F401
    import fsm_bot.wiring  # noqa: F401
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the handlers are reaped by the kernel
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        if os.fork() == 0:
            listener.close()
            _handle(conn)
        conn.close()


def _handle(conn: socket.socket) -> None:
    """One request: fork the command, tell its pid, wait for it, tell how it ended; then exit."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        req = json.loads(conn.makefile("r").readline())
        pid = os.fork()
        if pid == 0:
            conn.close()
            _command(req)
        conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        _, status = os.waitpid(pid, 0)
        conn.sendall(json.dumps({"status": status}).encode() + b"\n")
    finally:
        os._exit(0)


def _command(req: dict[str, Any]) -> None:
    code = 1
    try:
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        for fd, name, flags in ((0, os.devnull, os.O_RDONLY), (1, req["stdout"], os.O_WRONLY),
                                (2, req["stderr"], os.O_WRONLY)):
            os.dup2(os.open(name, flags), fd)
        from fsm_bot import failpoints
        importlib.reload(failpoints)  # it reads FSM_BOT_FAILPOINT when imported
        from fsm_bot.entry import main
        sys.argv = ["fsm-bot", *req["argv"]]
        code = main(req["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


class Zygote:
    def __init__(self, workdir: Path) -> None:
        self.dir = Path(workdir)
        self.path = str(self.dir / "zygote.sock")
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.zygote", self.path], stdout=subprocess.PIPE,
                                     cwd=Path(__file__).resolve().parents[1], text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def run(self, argv: list[str], *, env: Mapping[str, str] | None = None, cwd: Path | str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        fd_out, out = tempfile.mkstemp(dir=self.dir, suffix=".out")
        fd_err, err = tempfile.mkstemp(dir=self.dir, suffix=".err")
        os.close(fd_out)
        os.close(fd_err)
        req = {"argv": argv, "env": dict(os.environ if env is None else env), "cwd": str(cwd or os.getcwd()),
               "stdout": out, "stderr": err}
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                s.connect(self.path)
                s.sendall(json.dumps(req).encode() + b"\n")
                answers = s.makefile("r")
                pid = json.loads(answers.readline())["pid"]
                try:
                    status = json.loads(answers.readline())["status"]
                except (TimeoutError, socket.timeout):
                    os.kill(pid, signal.SIGKILL)
                    raise subprocess.TimeoutExpired(argv, timeout) from None
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            return subprocess.CompletedProcess(argv, code, Path(out).read_text(), Path(err).read_text())
        finally:
            for name in (out, err):
                with contextlib.suppress(OSError):
                    os.unlink(name)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


if __name__ == "__main__":
    serve(sys.argv[1])
