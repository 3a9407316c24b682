"""What a command loads is what it needs: reading a journal loads no data-frame or indicator library, a sim
session and its resume no HTTP client and no plotting. A module-level import of one of them where it is not
needed (``bench/startup.py`` measures what each costs) fails here."""

import os
import subprocess
import sys

PROBE = ("import sys\nfrom fsm_bot import cli\ncode = cli.main(sys.argv[1:])\n"
         "print('loaded:', code, *sorted(m for m in sys.modules if '.' not in m))")


def loaded(*argv, env=None) -> set[str]:
    """The top-level packages a command's process has imported when it ends (it must end with code 0)."""
    done = subprocess.run([sys.executable, "-c", PROBE, *map(str, argv)], capture_output=True, text=True, env=env)
    last = done.stdout.splitlines()[-1].split() if done.stdout else []
    assert last[:2] == ["loaded:", "0"], done.stderr
    return set(last[2:])


def test_status_and_history_read_the_journal_without_polars_numpy_talib_or_requests(tmp_path):
    d = tmp_path / "state"
    assert "requests" not in loaded("start", "--sim", "--state-dir", d)
    for command in ("status", "history"):
        assert loaded(command, "--state-dir", d) & {"polars", "numpy", "talib", "requests", "matplotlib"} == set()


def test_a_crashed_sim_session_resumes_without_an_http_client_or_plotting(tmp_path):
    d = tmp_path / "state"
    crashed = subprocess.run([sys.executable, "-m", "fsm_bot", "start", "--sim", "--state-dir", str(d)],
                             capture_output=True, env={**os.environ, "FSM_BOT_FAILPOINT": "journal.appended:40"})
    assert crashed.returncode == -9
    assert loaded("resume", "--state-dir", d) & {"requests", "urllib3", "matplotlib", "rich"} == set()
