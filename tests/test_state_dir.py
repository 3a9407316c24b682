"""The state dir survives operators and disks: a lock that deleting a file cannot steal, a journal that another
writer cannot change unnoticed, journal loss compared with the venue's holdings, a full or failing disk at
every write, a damaged venue ledger, unreadable and misplaced files, and stops at any moment."""

import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from fsm_bot import journal, runner
from tests.test_crash import EXE, VIEWS, differences, forked, fsm, one_order_per_interval, wait_for  # noqa: F401


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("reference") / "state"
    done = fsm("start", "--sim", "--state-dir", d)
    assert done.returncode == 0, done.stderr
    return d


def quiet():
    return open(os.devnull, "w")


# -- one writer ---------------------------------------------------------------------------------------------
def test_deleting_the_lock_file_does_not_let_a_second_process_in(reference, tmp_path):
    d = tmp_path / "state"
    first = subprocess.Popen([EXE, "start", "--sim", "--state-dir", str(d), "--speed", "600"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(d / "trades.jsonl")
    (d / "fsm-bot.lock").unlink()  # the natural reflex on "state dir is in use"
    second = fsm("start", "--sim", "--state-dir", d, "--fresh")
    resumer = fsm("resume", "--state-dir", d)
    assert second.returncode == 5 and resumer.returncode == 5, second.stderr + resumer.stderr
    assert "in use by another fsm-bot" in second.stderr
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert differences(d, reference) == [] and one_order_per_interval(d)


def test_a_journal_changed_under_its_writer_stops_the_session(tmp_path):
    d = tmp_path / "state"
    proc = subprocess.Popen([EXE, "start", "--sim", "--state-dir", str(d), "--speed", "600"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(d / "trades.jsonl")
    with open(d / "journal.jsonl", "ab") as f:  # another writer appends behind its back
        f.write(b'{"crc":"00000000","seq":999}\n')
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 4 and "changed under this process" in err, err
    assert sum(1 for _ in open(d / "venue-orders.jsonl")) <= len((d / "trades.jsonl").read_text().splitlines()) + 1


# -- journal loss ---------------------------------------------------------------------------------------------
def test_a_journal_cut_at_every_record_boundary_resumes_with_no_second_order(reference, tmp_path):
    lines = (reference / "journal.jsonl").read_bytes().splitlines(keepends=True)
    reported = 0
    for k in range(1, len(lines)):
        d = tmp_path / f"cut{k}"
        shutil.copytree(reference, d)
        (d / "journal.jsonl").write_bytes(b"".join(lines[:k]))  # a restore from an older backup
        out = tempfile.TemporaryFile("w+")
        assert runner.resume(runner.Options(state_dir=d, out=out)) == 0, k
        out.seek(0)
        reported += "journal loss" in out.read()
        assert one_order_per_interval(d), k  # every venue order booked, none twice
        assert (d / "trades.jsonl").read_bytes() == (reference / "trades.jsonl").read_bytes(), k
        shutil.rmtree(d)
    assert reported > 0


# -- the disk refuses a write -----------------------------------------------------------------------------------
PARTS = 3  # the sampled writes of each fault in three tests, so that both workers share them
@pytest.fixture(scope="module")
def writes_of_a_session(tmp_path_factory, forked) -> int:
    """How many writes a whole session makes through fsm_bot.storage (the last one that can fail)."""
    tmp_path = tmp_path_factory.mktemp("writes")
    low, high = 1, 4000
    while low < high:  # the smallest n whose failpoint never fires
        mid = (low + high) // 2
        d = tmp_path / f"count{mid}"
        done = forked("start", "--sim", "--state-dir", d, failpoint=f"storage.enospc:{mid}")
        shutil.rmtree(d, ignore_errors=True)
        low, high = (mid + 1, high) if done.returncode == 7 else (low, mid)
    return low - 1


@pytest.mark.parametrize("part", range(PARTS))
@pytest.mark.parametrize("fault", ["enospc", "eio"])
def test_a_refused_write_anywhere_stops_cleanly_and_resume_reaches_the_same_books(reference, writes_of_a_session,
                                                                                   forked, tmp_path, fault, part):
    """Every ``PARTS``-th of the sampled writes from ``part`` on (the parts together: all of them)."""
    total = writes_of_a_session
    assert total > 200
    rng = random.Random(fault)
    points = sorted({1, 2, 3, total, *rng.sample(range(4, total), 25)})
    for n in points[part::PARTS]:
        d = tmp_path / f"{fault}{n}"
        failed = forked("start", "--sim", "--state-dir", d, failpoint=f"storage.{fault}:{n}")
        assert failed.returncode == 7, (n, failed.stderr)
        assert "Traceback" not in failed.stderr and "fsm-bot resume" in failed.stderr
        assert str(d) in failed.stderr  # the message names the file
        resumed = forked("resume", "--state-dir", d)
        if resumed.returncode == 2 and "never began" in resumed.stderr:  # the first record itself was refused
            resumed = forked("start", "--sim", "--state-dir", d)
        assert resumed.returncode == 0, (n, resumed.stderr)
        assert differences(d, reference) == [], n
        assert one_order_per_interval(d), n
        shutil.rmtree(d)


# -- the venue's ledger -------------------------------------------------------------------------------------------
def test_a_ledger_damaged_before_its_last_line_stops_resume(tmp_path):
    d = tmp_path / "state"
    assert fsm("start", "--sim", "--state-dir", d, failpoint="journal.appended:60").returncode == -9
    lines = (d / "venue-orders.jsonl").read_bytes().splitlines(keepends=True)
    assert len(lines) >= 3
    lines[1] = lines[1].replace(b'"side":"', b'"side":"X')
    (d / "venue-orders.jsonl").write_bytes(b"".join(lines))
    before = (d / "journal.jsonl").read_bytes()
    refused = fsm("resume", "--state-dir", d)
    assert refused.returncode == 4 and "line 2 of the venue's order ledger is damaged" in refused.stderr
    assert (d / "journal.jsonl").read_bytes() == before and "Traceback" not in refused.stderr


def test_a_torn_last_ledger_line_is_dropped_and_the_order_posted_again(reference, tmp_path):
    d = tmp_path / "state"
    assert fsm("start", "--sim", "--state-dir", d, failpoint="venue.accepted:3").returncode == -9
    data = (d / "venue-orders.jsonl").read_bytes()
    (d / "venue-orders.jsonl").write_bytes(data[: len(data) - 40])  # the venue's last write was torn
    assert fsm("resume", "--state-dir", d).returncode == 0
    assert differences(d, reference) == [] and one_order_per_interval(d)


# -- files in the wrong state -------------------------------------------------------------------------------------
def test_a_journal_that_is_a_directory_and_a_state_dir_that_is_a_file(tmp_path):
    d = tmp_path / "state"
    (d / "journal.jsonl").mkdir(parents=True)
    for argv in (["resume"], ["status"], ["start", "--sim"]):
        done = fsm(*argv, "--state-dir", d)
        assert done.returncode == 2 and "is a directory" in done.stderr and "Traceback" not in done.stderr, argv
    f = tmp_path / "afile"
    f.write_text("x")
    for argv in (["start", "--sim"], ["resume"], ["status"]):
        done = fsm(*argv, "--state-dir", f)
        assert done.returncode == 2 and "Traceback" not in done.stderr, (argv, done.stderr)
    done = fsm("start", "--sim", "--state-dir", f / "sub")
    assert done.returncode == 2 and ("cannot create it" in done.stderr or "is a file" in done.stderr)


def read_only(paths: list[Path], argv: list[str]) -> subprocess.CompletedProcess:
    """Run ``argv`` with ``paths`` read-only: bind-mounted read-only in a mount namespace of its own (root,
    whom file modes do not stop), else by their modes."""
    if os.geteuid() == 0:
        mounts = " && ".join(f"mount --bind '{p}' '{p}' && mount -o remount,bind,ro '{p}'" for p in paths)
        cmd = ["unshare", "-m", "sh", "-c", f'{mounts} && exec "$@"', "sh", *argv]
    else:
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        cmd = argv
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def can_mount_read_only(tmp_path) -> bool:
    if os.geteuid() != 0:
        return True
    probe = tmp_path / "probe"
    probe.mkdir()
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount --bind {probe} {probe} && mount -o remount,bind,ro {probe}"],
        capture_output=True).returncode == 0


@pytest.mark.parametrize("what", ["dir", "journal"])
def test_a_read_only_state_dir_or_journal_gets_a_message_not_a_traceback(reference, tmp_path, what):
    if not can_mount_read_only(tmp_path):
        pytest.skip("root without the right to mount: file modes do not stop root")
    d = tmp_path / "state"
    assert fsm("start", "--sim", "--state-dir", d, failpoint="journal.appended:50").returncode == -9
    target = [d] if what == "dir" else [d / "journal.jsonl"]
    before = (d / "journal.jsonl").read_bytes()
    for argv in (["resume"], ["start", "--sim", "--fresh"]) if what == "dir" else (["resume"],):
        done = read_only(target, [EXE, *argv, "--state-dir", str(d)])
        assert done.returncode in (2, 7) and "Traceback" not in done.stderr, (argv, done.stderr)
        assert "read-only" in done.stderr.lower() or "not writable" in done.stderr, done.stderr
    shown = read_only(target, [EXE, "status", "--state-dir", str(d)])
    assert shown.returncode == 0, shown.stderr  # status only reads
    assert (d / "journal.jsonl").read_bytes() == before
    for p in [d, *d.iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    assert fsm("resume", "--state-dir", d).returncode == 0


def test_status_of_a_journal_that_holds_no_record(tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    (d / "journal.jsonl").write_bytes(b'{"crc":"1234')  # a kill during the very first write
    done = fsm("status", "--state-dir", d)
    assert done.returncode == 2 and "never began" in done.stderr and "Traceback" not in done.stderr
    assert fsm("start", "--sim", "--state-dir", d).returncode == 0


def test_a_cr_inside_the_last_record_is_a_torn_record_dropped(reference, tmp_path):
    d = tmp_path / "state"
    shutil.copytree(reference, d)
    data = (d / "journal.jsonl").read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    (d / "journal.jsonl").write_bytes(data[: last + 30] + b"\r" + data[last + 31:])
    done = runner.resume(runner.Options(state_dir=d, out=quiet()))
    assert done == 0 and differences(d, reference) == []


def test_temporaries_of_an_interrupted_rebuild_are_cleaned(reference, tmp_path):
    d = tmp_path / "state"
    shutil.copytree(reference, d)
    (d / "trades.jsonl.tmp").write_text("half a rebuild")
    assert runner.resume(runner.Options(state_dir=d, out=quiet())) == 0
    assert not list(d.glob("*.tmp"))


def test_an_interrupted_archive_is_finished_before_the_next_session(reference, tmp_path):
    d = tmp_path / "state"
    shutil.copytree(reference, d)
    session = json.loads((d / "journal.jsonl").read_text().splitlines()[0])["session"]
    staging = d / "archive" / f".{session}.partial"
    staging.mkdir(parents=True)
    os.rename(d / "journal.jsonl", staging / "journal.jsonl")  # killed after the journal moved
    done = fsm("start", "--sim", "--state-dir", d)
    assert done.returncode == 0 and "finished archiving" in done.stdout
    archived = d / "archive" / session
    assert {p.name for p in archived.iterdir()} >= set(VIEWS) and not staging.exists()


# -- stops at any moment ------------------------------------------------------------------------------------------
def catches_sigterm(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_sigterm_and_sigint_at_random_moments_exit_130_with_the_hint(tmp_path):
    """From the moment the process can hear a signal (its first line: the interpreter's own start-up comes
    before any code can), at random moments through start-up, the journal load and the session."""
    rng = random.Random(7)
    for n in range(24):
        d = tmp_path / f"s{n}"
        if n % 3 == 2:  # a resume of a half-run session: the journal load and replay in the window
            assert fsm("start", "--sim", "--state-dir", d, failpoint="journal.appended:40").returncode == -9
            argv = [EXE, "resume", "--state-dir", str(d), "--speed", "400"]
        else:
            argv = [EXE, "start", "--sim", "--state-dir", str(d), "--speed", "400"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while not catches_sigterm(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.0005)
        time.sleep(rng.choice([0, 0, rng.uniform(0, 0.05), rng.uniform(0, 1.5)]))
        proc.send_signal(rng.choice([signal.SIGTERM, signal.SIGINT]))
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, (n, proc.returncode, err)
        assert "fsm-bot resume" in out + err and "Traceback" not in err, (n, err)
        if (d / "journal.jsonl").exists() and journal.read(d / "journal.jsonl").records:
            assert fsm("resume", "--state-dir", d).returncode == 0, n
