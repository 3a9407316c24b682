"""deploy/: the Dockerfile's every command run for real in a fresh venv (no container engine here), the
session script that Docker and systemd run (resume after a kill, else start), and `.env.example`
naming every variable the program reads."""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from fsm_bot.config import describe

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SCRIPT = DEPLOY / "fsm-bot-session"


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, argument) pairs of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    return [(m.group(1), m.group(2).strip()) for m in re.finditer(r"^([A-Z]+)\s+(.*)$", text, re.M)]


def env_vars_read_by_the_code() -> set[str]:
    names = set()
    for path in list((ROOT / "fsm_bot").rglob("*.py")) + [SCRIPT]:
        names |= set(re.findall(r"\bFSM_BOT_[A-Z0-9_]+\b", path.read_text()))
    names.discard("FSM_BOT_FAILPOINT")  # the crash tests' kill switch, not a setting (fsm_bot/failpoints.py)
    return {n for n in names if not n.endswith("_")} | {env for _, _, _, env, _ in describe()}


def test_env_example_names_every_variable_and_holds_no_value():
    example = (ROOT / ".env.example").read_text()
    assigned = dict(re.findall(r"^(FSM_BOT_[A-Z0-9_]+)=(.*)$", example, re.M))
    assert env_vars_read_by_the_code() - set(assigned) == set()
    assert {k: v for k, v in assigned.items() if v} == {}


def test_the_dockerfile_is_a_slim_python_image_with_the_state_dir_a_volume():
    steps = dict(dockerfile())
    assert re.fullmatch(r"python:3\.1[1-9]-slim", steps["FROM"])
    assert steps["VOLUME"] == "/state" and "FSM_BOT_STATE_DIR=/state" in steps["ENV"]
    assert steps["USER"] != "root" and "--memory=512m" in (DEPLOY / "Dockerfile").read_text()
    assert "mem_limit: 512m" in (DEPLOY / "compose.yaml").read_text()
    assert "MemoryMax=512M" in (DEPLOY / "fsm-bot.service").read_text()


def _build_context(app: Path) -> None:
    """The image's /app and /usr/local/bin, as the Dockerfile's COPY lines make them."""
    for instruction, arg in dockerfile():
        if instruction != "COPY":
            continue
        *sources, target = shlex.split(arg)
        for src in sources:
            if target.endswith("/"):
                dest = app / Path(src).name  # into the work dir
            elif target.startswith("/"):
                dest = app / Path(target).name  # a file put elsewhere in the image, here beside the rest
            else:
                dest = app / target
            (shutil.copytree if (ROOT / src).is_dir() else shutil.copy)(ROOT / src, dest)


def test_every_dockerfile_command_runs_in_a_fresh_venv(tmp_path):
    app, venv, state = tmp_path / "app", tmp_path / "venv", tmp_path / "state"
    app.mkdir()
    _build_context(app)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("VIRTUAL_ENV", None)
    runs = [arg for instruction, arg in dockerfile() if instruction == "RUN"]
    assert runs, "the Dockerfile runs nothing?"
    for command in runs:
        command = command.replace("/state", str(state))
        if os.geteuid() != 0:
            command = command.replace("chown 65534:65534", "true")  # only root may give the dir away
        done = subprocess.run(["sh", "-c", command], cwd=app, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert state.is_dir()
    # the image's entry point, as installed, runs a whole session (offline, so the test needs no network)
    session = subprocess.run([str(app / "fsm-bot-session")], cwd=tmp_path, capture_output=True, text=True,
                             env={**env, "FSM_BOT_MODE": "sim", "FSM_BOT_STATE_DIR": str(tmp_path / "s")}, timeout=300)
    assert session.returncode == 0, session.stderr
    assert len((tmp_path / "s" / "trades.jsonl").read_text().splitlines()) == 18
    live = subprocess.run([str(venv / "bin" / "python"), "-c", "import polymarket, fsm_bot.adapters.polymarket.live"],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert live.returncode == 0, live.stderr  # the [live] extra is in the image


def _session(state: Path, *args: str, mode: str = "sim") -> subprocess.Popen:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FSM_BOT_MODE": mode,
           "FSM_BOT_STATE_DIR": str(state)}
    return subprocess.Popen([str(SCRIPT), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_session_script_resumes_a_killed_session_and_then_starts_a_new_one(tmp_path):
    clean = _session(tmp_path / "clean")
    assert clean.wait(120) == 0
    killed = _session(tmp_path / "s", "--speed", "3000")
    journal = tmp_path / "s" / "journal.jsonl"
    deadline = time.monotonic() + 60
    while (not journal.exists() or journal.read_text().count("\n") < 40) and time.monotonic() < deadline:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait(10)
    rows = len((tmp_path / "s" / "trades.jsonl").read_text().splitlines())
    assert 0 < rows < 18, "the kill landed mid-session"
    again = _session(tmp_path / "s")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert "resuming session" in out
    assert (tmp_path / "s" / "trades.jsonl").read_bytes() == (tmp_path / "clean" / "trades.jsonl").read_bytes()
    third = _session(tmp_path / "s")
    out, err = third.communicate(timeout=120)
    assert third.returncode == 0 and "archived finished session" in out


def test_the_session_script_refuses_live_without_confirmation(tmp_path):
    done = _session(tmp_path / "s", mode="live")
    out, err = done.communicate(timeout=30)
    assert done.returncode == 2 and "FSM_BOT_CONFIRM_LIVE=yes" in err
