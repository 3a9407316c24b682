"""Crash safety with real processes: a session SIGKILLed at every journal append, between an order
reaching the venue and its result being journaled, and in the middle of an append, then resumed by a
new process, ends byte-identical to the uncrashed run with one order per traded interval."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fsm_bot import journal, machine, runner
from tests.zygote import Zygote

EXE = str(Path(sys.executable).with_name("fsm-bot"))
VIEWS = ("journal.jsonl", "trades.jsonl", "equity.csv", "corrections.jsonl", "venue-orders.jsonl")


def fsm(*args, failpoint=None, **kw):
    env = {**os.environ, "FSM_BOT_FAILPOINT": failpoint} if failpoint else None
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, env=env, timeout=120, **kw)


@pytest.fixture(scope="module")
def forked(tmp_path_factory):
    """The matrices' commands, each a process forked from one that has imported fsm_bot (``tests/zygote.py``):
    hundreds of them, a quarter of a second of imports saved on each; every one still killed by its SIGKILL."""
    zygote = Zygote(tmp_path_factory.mktemp("zygote"))
    yield lambda *args, failpoint=None: zygote.run(
        [*map(str, args)], env={**os.environ, **({"FSM_BOT_FAILPOINT": failpoint} if failpoint else {})})
    zygote.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("reference") / "state"
    done = fsm("start", "--sim", "--state-dir", d)
    assert done.returncode == 0, done.stderr
    return d


def differences(d: Path, reference: Path) -> list[str]:
    return [name for name in VIEWS if (d / name).read_bytes() != (reference / name).read_bytes()]


def one_order_per_traded_interval(d: Path) -> bool:
    orders = [json.loads(line) for line in (d / "venue-orders.jsonl").read_text().splitlines()]
    traded = [json.loads(line) for line in (d / "trades.jsonl").read_text().splitlines() if '"SKIPPED"' not in line]
    return len(orders) == len({o["slug"] for o in orders}) == len(traded)


def crash_then_resume(run, base: Path, point: str, *args: str) -> tuple[str, Path, int, int]:
    d = base / point.replace(":", "-") / "state"
    crash = run("start", "--sim", "--state-dir", d, *args, failpoint=point)
    resumed = run("resume", "--state-dir", d)
    return point, d, crash.returncode, resumed.returncode


def failed(results: list[tuple[str, Path, int, int]], reference: Path, one_order) -> list[tuple[str, int, int]]:
    """The crash points whose process was not killed, whose resume failed, or whose files differ."""
    return [(point, crash_code, resume_code) for point, d, crash_code, resume_code in results
            if crash_code != -signal.SIGKILL or resume_code != 0 or differences(d, reference) or not one_order(d)]


PARTS = 4  # the matrix runs in parts, so that the suite's workers share it; together they cover every point


@pytest.mark.parametrize("part", range(PARTS))
def test_sigkill_at_every_journal_append_and_venue_acceptance(reference, forked, tmp_path, part):
    appends = len(journal.read(reference / "journal.jsonl").records)
    orders = len((reference / "venue-orders.jsonl").read_text().splitlines())
    points = ([f"journal.appended:{n}" for n in range(1, appends + 1)]
              + [f"venue.accepted:{n}" for n in range(1, orders + 1)]
              + [f"journal.torn:{n}" for n in range(2, appends + 1, 3)])
    mine = points[part::PARTS]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda p: crash_then_resume(forked, tmp_path, p), mine))
    assert mine and failed(results, reference, one_order_per_traded_interval) == []
    print(f"\ncrash points covered in part {part + 1} of {PARTS}: {len(mine)} of {len(points)} ({appends} appends, "
          f"{orders} venue acceptances, {len(points) - appends - orders} torn appends)")


def test_a_power_cut_before_the_decisions_fsync_redoes_the_decision_and_posts_once(reference, forked, tmp_path):
    """``settled`` and ``recorded`` of the interval before, then ``tick``, ``fetched``, ``predicted`` and
    ``approved``, ride on the fsync of ``sized`` (before the post). A power cut after one of them loses every
    record since the last fsync (the failpoint cuts the file back to it): at each riding record of the first
    three intervals and at every interval's ``approved`` (which loses all six), the resumed process redoes the
    steps, posts once, and ends byte-identical."""
    recs = journal.read(reference / "journal.jsonl").records
    riding = [r for r in recs if r["trigger"] in machine.RIDING]
    assert [r["trigger"] for r in riding[:6]] == ["tick", "fetched", "predicted", "approved", "settled", "recorded"]
    chosen = [r for r in riding if r["interval"] <= 3 or r["trigger"] == "approved"]
    points = [f"journal.power_cut:{r['seq'] + 1}" for r in chosen]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda p: crash_then_resume(forked, tmp_path, p), points))
    assert failed(results, reference, one_order_per_traded_interval) == []


def test_a_power_cut_keeps_every_record_up_to_the_last_fsync(tmp_path):
    """The records since the last fsync are lost together by a cut at the next ``approved`` (interval 1's
    settlement and row among them); ``sized`` itself and everything before it survive a cut just after it."""
    d = tmp_path / "cut-approved"
    assert fsm("start", "--sim", "--state-dir", d, failpoint="journal.power_cut:13").returncode == -signal.SIGKILL
    kept = journal.read(d / "journal.jsonl").records
    assert [r["trigger"] for r in kept[-2:]] == ["sized", "submitted"] and len(kept) == 7
    d = tmp_path / "cut-sized"
    assert fsm("start", "--sim", "--state-dir", d, failpoint="journal.power_cut:14").returncode == -signal.SIGKILL
    assert [r["trigger"] for r in journal.read(d / "journal.jsonl").records][-5:] == [
        "tick", "fetched", "predicted", "approved", "sized"]


CHAIN_RECORDS = ("submitted", "trade_updated", "settled", "recorded", "reconciled")


@pytest.fixture(scope="module")
def chain_reference(tmp_path_factory):
    """A session whose fills fail on chain (30%) or are never mined (20%): VOIDs, trade updates, follow-ups."""
    base = tmp_path_factory.mktemp("chain")
    config = base / "chain.toml"
    config.write_text("sim_failed_share = 0.3\nsim_unmined_share = 0.2\n")
    d = base / "state"
    done = fsm("start", "--sim", "--state-dir", d, "--config", config)
    assert done.returncode == 0, done.stderr
    return d, config


@pytest.mark.parametrize("part", range(2))  # in two parts, as the matrix above
def test_sigkill_at_every_record_of_fills_followed_on_chain(chain_reference, forked, tmp_path, part):
    reference, config = chain_reference
    recs = journal.read(reference / "journal.jsonl").records
    assert {"trade_updated"} <= {r["trigger"] for r in recs}
    orders = len((reference / "venue-orders.jsonl").read_text().splitlines())
    points = ([f"journal.appended:{r['seq'] + 1}" for r in recs if r["trigger"] in CHAIN_RECORDS]
              + [f"venue.accepted:{n}" for n in range(1, orders + 1)])[part::2]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda p: crash_then_resume(forked, tmp_path, p, "--config", str(config)), points))
    assert failed(results, reference, one_order_per_interval) == []
    print(f"\nchain crash points covered: {len(points)}")


def one_order_per_interval(d: Path) -> bool:
    orders = [json.loads(line) for line in (d / "venue-orders.jsonl").read_text().splitlines()]
    booked = [json.loads(line)["order_id"] for line in (d / "trades.jsonl").read_text().splitlines()]
    return len(orders) == len({o["slug"] for o in orders}) and sorted(o["key"] for o in orders) == sorted(
        k for k in booked if k)


def test_a_torn_first_record_means_the_session_never_began(tmp_path):
    d = tmp_path / "state"
    assert fsm("start", "--sim", "--state-dir", d, failpoint="journal.torn:1").returncode == -signal.SIGKILL
    resumed = fsm("resume", "--state-dir", d)
    assert resumed.returncode == 2 and "never began" in resumed.stderr
    assert fsm("start", "--sim", "--state-dir", d).returncode == 0


def test_truncating_the_last_record_at_every_byte_then_resuming(reference, tmp_path):
    data = (reference / "journal.jsonl").read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    for cut in range(last, len(data)):
        d = tmp_path / f"cut{cut}"
        shutil.copytree(reference, d, ignore=shutil.ignore_patterns("archive"))
        (d / "journal.jsonl").write_bytes(data[:cut])
        assert runner.resume(runner.Options(state_dir=d, out=open(os.devnull, "w"))) == 0
        assert differences(d, reference) == [], cut
        shutil.rmtree(d)


@pytest.mark.parametrize("trigger", ["sized", "submitted", "fetched"])
def test_truncating_a_mid_session_record_at_sampled_bytes_then_resuming(reference, tmp_path, trigger):
    recs = journal.read(reference / "journal.jsonl").records
    k = next(r["seq"] for r in recs if r["trigger"] == trigger and r["interval"] == 3)
    crashed = tmp_path / "crashed"
    assert fsm("start", "--sim", "--state-dir", crashed, failpoint=f"journal.torn:{k + 1}").returncode == -9
    lines = (reference / "journal.jsonl").read_bytes().splitlines(keepends=True)
    prefix, record = b"".join(lines[:k]), lines[k]
    for cut in sorted({0, 1, len(record) - 1, *range(0, len(record), max(23, len(record) // 60))}):
        d = tmp_path / f"cut{cut}"
        shutil.copytree(crashed, d)
        (d / "journal.jsonl").write_bytes(prefix + record[:cut])
        assert runner.resume(runner.Options(state_dir=d, out=open(os.devnull, "w"))) == 0
        assert differences(d, reference) == [], cut
        shutil.rmtree(d)


def wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size > 0):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_sigterm_mid_session_then_resume(reference, tmp_path):
    d = tmp_path / "state"
    proc = subprocess.Popen([EXE, "start", "--sim", "--state-dir", str(d), "--speed", "300"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(d / "trades.jsonl")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "fsm-bot resume" in out + err
    assert 0 < len((d / "trades.jsonl").read_text().splitlines()) < 18
    assert fsm("start", "--sim", "--state-dir", d).returncode == 2  # unfinished: start refuses
    assert fsm("resume", "--state-dir", d).returncode == 0
    assert differences(d, reference) == []


def test_two_processes_on_one_state_dir(tmp_path):
    d = tmp_path / "state"
    first = subprocess.Popen([EXE, "start", "--sim", "--state-dir", str(d), "--speed", "120"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(d / "journal.jsonl")
        second = fsm("start", "--sim", "--state-dir", d)
        assert second.returncode == 5 and "fsm-bot.lock" in second.stderr and str(first.pid) in second.stderr
        assert fsm("resume", "--state-dir", d).returncode == 5
        assert fsm("status", "--state-dir", d).returncode == 0  # status takes no lock
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)


def test_a_stale_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    d = tmp_path / "state"
    assert fsm("start", "--sim", "--state-dir", d, failpoint="journal.appended:30").returncode == -9
    assert (d / "fsm-bot.lock").read_text().strip().isdigit()
    resumed = fsm("resume", "--state-dir", d)
    assert resumed.returncode == 0 and "stale lock" in resumed.stdout


def test_resuming_a_halted_session_does_not_trade(tmp_path):
    d = tmp_path / "state"
    assert fsm("start", "--sim", "--state-dir", d, "--capital", "10").returncode == 3
    before = {name: (d / name).read_bytes() for name in ("journal.jsonl", "venue-orders.jsonl")}
    again = fsm("resume", "--state-dir", d)
    assert again.returncode == 3 and "HALTED" in again.stdout
    assert {name: (d / name).read_bytes() for name in before} == before


def test_resuming_a_finished_session_says_so(reference, tmp_path):
    d = tmp_path / "state"
    shutil.copytree(reference, d)
    again = fsm("resume", "--state-dir", d)
    assert again.returncode == 0 and "is finished" in again.stdout and differences(d, reference) == []


def test_resume_refuses_another_mode(reference, tmp_path):
    d = tmp_path / "state"
    shutil.copytree(reference, d)
    recs = journal.read(d / "journal.jsonl").records
    recs[0]["data"]["mode"] = "paper"
    (d / "journal.jsonl").write_bytes(b"".join(journal.encode({k: v for k, v in r.items() if k != "crc"})
                                                for r in recs))
    refused = fsm("resume", "--state-dir", d, "--sim")
    assert refused.returncode == 2 and "--paper session" in refused.stderr


def test_damage_before_the_last_record_stops_resume_and_nothing_trades(reference, tmp_path):
    d = tmp_path / "state"
    assert fsm("start", "--sim", "--state-dir", d, failpoint="journal.appended:60").returncode == -9
    data = bytearray((d / "journal.jsonl").read_bytes())
    data[len(data) // 2] ^= 0x20
    (d / "journal.jsonl").write_bytes(bytes(data))
    ledger = (d / "venue-orders.jsonl").read_bytes()
    refused = fsm("resume", "--state-dir", d)
    assert refused.returncode == 4 and "damaged" in refused.stderr
    assert (d / "venue-orders.jsonl").read_bytes() == ledger


def test_status_reads_the_journal_without_changing_it(reference, tmp_path):
    d = tmp_path / "state"
    assert fsm("start", "--sim", "--state-dir", d, failpoint="journal.appended:50").returncode == -9
    before = (d / "journal.jsonl").read_bytes()
    shown = fsm("status", "--state-dir", d)
    assert shown.returncode == 0 and "interval" in shown.stdout and "capital" in shown.stdout
    as_json = json.loads(fsm("status", "--state-dir", d, "--json").stdout)
    assert as_json["finished"] is False and as_json["state"] and (d / "journal.jsonl").read_bytes() == before
