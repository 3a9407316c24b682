"""Sessions back to back in one state dir (``start --sessions N``, ``--forever``): each archived when it ends, the
next at the next interval boundary; a crash anywhere resumes the chain; ``history`` totals every session to the
cent; ``status`` says what is held and whether a process runs."""

import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from fsm_bot import history, journal
from tests.test_crash import fsm

FILES = ("journal.jsonl", "trades.jsonl", "equity.csv", "corrections.jsonl", "venue-orders.jsonl")


def archived(d: Path) -> list[Path]:
    return sorted(p for p in (d / "archive").iterdir() if p.is_dir())


def pnl_of_files(folder: Path) -> Decimal:
    rows = [json.loads(line, parse_float=Decimal) for line in (folder / "trades.jsonl").read_text().splitlines()]
    corrections = [json.loads(line, parse_float=Decimal)
                   for line in (folder / "corrections.jsonl").read_text().splitlines()]
    return sum((Decimal(str(r["pnl"])) for r in rows), Decimal(0)) + sum(
        (Decimal(str(c["pnl_change"])) for c in corrections), Decimal(0))


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    d = tmp_path_factory.mktemp("chain") / "state"
    done = fsm("start", "--sim", "--state-dir", d, "--sessions", "3")
    assert done.returncode == 0, done.stderr
    return d


def test_three_sessions_back_to_back_each_archived(chain):
    folders = archived(chain)
    assert len(folders) == 3 and not (chain / "journal.jsonl").exists()
    starts = [journal.read(f / "journal.jsonl").records[0]["data"]["start_ms"] for f in folders]
    assert starts == [starts[0] + n * 18 * 300_000 for n in range(3)]  # each at the boundary the last one ended
    chains = [journal.read(f / "journal.jsonl").records[0]["data"]["chain"] for f in folders]
    assert [c["index"] for c in chains] == [1, 2, 3] and {c["sessions"] for c in chains} == {3}
    assert all(len((f / "trades.jsonl").read_text().splitlines()) == 18 for f in folders)


def test_history_totals_equal_the_sessions_own_files_to_the_cent(chain):
    done = fsm("history", "--state-dir", chain, "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [r["session"] for r in data["sessions"]] == [f.name for f in archived(chain)]
    assert Decimal(data["totals"]["pnl"]) == sum((pnl_of_files(f) for f in archived(chain)), Decimal(0))
    assert [Decimal(r["pnl"]) for r in data["sessions"]] == [pnl_of_files(f) for f in archived(chain)]
    cumulative = data["totals"]["cumulative_pnl_by_mode"]["sim"]
    assert Decimal(cumulative[-1]) == Decimal(data["totals"]["pnl"]) and len(cumulative) == 3
    text = fsm("history", "--state-dir", chain)
    assert text.returncode == 0 and "3 session(s)" in text.stdout


def test_history_plots_the_cumulative_equity(chain, tmp_path):
    done = fsm("history", "--state-dir", chain, "--plot", tmp_path / "plots" / "history.png")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "plots" / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_kill_in_the_second_session_and_a_resume_finish_the_chain_as_if_uncrashed(chain, tmp_path):
    d = tmp_path / "state"
    records = len(journal.read(archived(chain)[0] / "journal.jsonl").records)
    killed = fsm("start", "--sim", "--state-dir", d, "--sessions", "3", failpoint=f"journal.appended:{records + 40}")
    assert killed.returncode == -9
    assert len(archived(d)) == 1  # the first session archived, the second half-run in the state dir
    assert fsm("resume", "--state-dir", d).returncode == 0
    assert [f.name for f in archived(d)] == [f.name for f in archived(chain)]
    for mine, ref in zip(archived(d), archived(chain)):
        assert [n for n in FILES if (mine / n).read_bytes() != (ref / n).read_bytes()] == [], mine.name


def test_a_kill_between_two_sessions_of_a_chain_resumes_the_chain(chain, tmp_path):
    d = tmp_path / "state"
    records = len(journal.read(archived(chain)[0] / "journal.jsonl").records)
    killed = fsm("start", "--sim", "--state-dir", d, "--sessions", "3", failpoint=f"journal.appended:{records}")
    assert killed.returncode == -9  # the first session's last record is durable; nothing archived yet
    assert fsm("resume", "--state-dir", d).returncode == 0
    assert [f.name for f in archived(d)] == [f.name for f in archived(chain)]


def test_a_halt_ends_its_session_not_the_chain_unless_asked(tmp_path):
    d = tmp_path / "a"
    done = fsm("start", "--sim", "--state-dir", d, "--sessions", "2", "--capital", "10")
    assert done.returncode == 0, done.stderr
    halts = [journal.read(f / "journal.jsonl").records[-1]["dst"] for f in archived(d)]
    assert halts == ["HALTED", "HALTED"]
    d = tmp_path / "b"
    done = fsm("start", "--sim", "--state-dir", d, "--sessions", "2", "--capital", "10", "--stop-on-halt")
    assert done.returncode == 3 and len(archived(d)) == 1


def test_forever_runs_until_the_data_ends(tmp_path):
    d = tmp_path / "state"
    done = fsm("start", "--sim", "--state-dir", d, "--forever", "--intervals", "200")
    assert done.returncode == 0, done.stderr
    assert "the chain stops after" in done.stdout and len(archived(d)) >= 2


def test_status_shows_the_open_position_and_whether_a_process_runs(tmp_path):
    d = tmp_path / "state"
    assert fsm("start", "--sim", "--state-dir", d, failpoint="journal.appended:7").returncode == -9  # after submitted
    shown = fsm("status", "--state-dir", d, "--json")
    data = json.loads(shown.stdout)
    assert data["running"] is None and data["position"] and "shares" in data["position"]
    assert isinstance(data["last_trades"], list)
    text = fsm("status", "--state-dir", d)
    assert "not running" in text.stdout and "position" in text.stdout and "from start" in text.stdout


def test_history_of_an_empty_dir_and_of_a_damaged_journal(tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    assert json.loads(fsm("history", "--state-dir", d, "--json").stdout)["totals"]["sessions"] == 0
    shutil.copytree(Path(__file__).parent / "journals" / "win-loss", d / "archive" / "a")
    data = bytearray((d / "archive" / "a" / "journal.jsonl").read_bytes())
    data[100] ^= 0x20
    (d / "archive" / "a" / "journal.jsonl").write_bytes(bytes(data))
    out = json.loads(fsm("history", "--state-dir", d, "--json").stdout)
    assert out["totals"]["sessions"] == 0 and out["unreadable"]


def test_the_module_reads_what_the_command_prints(chain):
    data = history.report(chain)
    assert data["totals"]["sessions"] == 3 and data["totals"]["traded"] == 54 - sum(
        r["skipped"] + r["void"] for r in data["sessions"])


def test_the_command_posts_alerts_and_serves_metrics_while_it_runs(tmp_path):
    """``start --notify URL --metrics-port P``: the webhook hears the session from start to end, and /metrics,
    scraped during the session, shows the counters moving; the session's files are those of a run without."""
    import socket
    import subprocess
    import time

    import requests

    from tests.test_alerts import Hook
    from tests.test_crash import EXE
    hook = Hook()
    hook.server.start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = tmp_path / "state"
    proc = subprocess.Popen([EXE, "start", "--sim", "--state-dir", str(d), "--speed", "3000", "--notify",
                             f"{hook.url}/generic", "--metrics-port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    scraped = []
    try:
        while proc.poll() is None and len(scraped) < 40:
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
                scraped.append(sum(float(line.split()[-1]) for line in text.splitlines()
                                   if line.startswith("fsm_bot_intervals_total{")))
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        out, err = proc.communicate(timeout=120)
    finally:
        hook.server.stop()
    assert proc.returncode == 0, err
    events = [b["event"] for b in hook.bodies("/generic")]
    assert events[0] == "session_start" and events[-1] == "session_end"
    assert events.count("settled") == 18 and events.count("trade") == 18
    assert len(set(scraped)) >= 3 and scraped == sorted(scraped)  # the counter moved while the session ran
    reference = tmp_path / "ref"
    assert fsm("start", "--sim", "--state-dir", reference).returncode == 0
    assert all((d / n).read_bytes() == (reference / n).read_bytes() for n in FILES)
