"""Replay re-checks every journaled step against today's handlers, with no exemption: a record edited by
hand (a late-resume skip, a snapshot, a venue's answer, a transition the table does not have) is refused
as a ``ReplayMismatch`` before anything trades."""

import threading
from decimal import Decimal

import pytest

from fsm_bot import engine, journal
from fsm_bot.config import Config
from fsm_bot.errors import Interrupted, ReplayMismatch
from tests.fakes import START, FakeClock, FakeFeed, FakeVenue, new_session, records

CFG = Config(intervals=3, capital_usd=Decimal(1000))


class StopAfter:
    def __init__(self, stop, trigger, interval):
        self.stop, self.trigger, self.interval = stop, trigger, interval

    def on_transition(self, t):
        if t.step.trigger == self.trigger and t.before.interval == self.interval:
            self.stop.set()


def session_with_a_late_resume(tmp):
    """Interval 2 stopped after FETCH, resumed with 59 s left: its skip is the late-resume rule's."""
    venue, feed = FakeVenue(), FakeFeed(lambda k: "UP")
    session, jr = new_session(tmp, CFG)
    stop = threading.Event()
    with pytest.raises(Interrupted):
        engine.Engine(session, jr, FakeClock(START), feed, venue, prompt=[StopAfter(stop, "fetched", 2)],
                      stop=stop).run()
    jr.close()
    jr, _, history = engine.load(tmp / "journal.jsonl")
    session = history[-1][1]
    engine.Engine(session, jr, FakeClock(START + 300_000 + 241_000), feed, venue, resumed=True).run()
    jr.close()
    return records(tmp)


def rewrite(path, recs):
    path.write_bytes(b"".join(journal.encode({k: v for k, v in r.items() if k != "crc"}) for r in recs))


def test_every_record_of_a_session_with_a_late_resume_is_rechecked(tmp_path):
    recs = session_with_a_late_resume(tmp_path)
    late = [r for r in recs if r["trigger"] == "skip"]
    assert [(r["src"], r["data"]["reason"], r["inputs"]) for r in late] == [("PREDICT", "late_resume", {"resumed": True})]
    assert engine.replay_check(recs) == len(recs) - 1


@pytest.mark.parametrize("forge", ["not_resumed", "other_reason"])
def test_a_late_resume_skip_edited_by_hand_is_refused(tmp_path, forge):
    recs = session_with_a_late_resume(tmp_path)
    skip = next(r for r in recs if r["trigger"] == "skip")
    if forge == "not_resumed":  # the skip now claims a rule the handler does not apply to a running session
        skip["inputs"] = {}
    else:
        skip["data"]["reason"] = "too_late"
    rewrite(tmp_path / "journal.jsonl", recs)
    with pytest.raises(ReplayMismatch, match=f"record {skip['seq']} \\(PREDICT\\)"):
        engine.load(tmp_path / "journal.jsonl")


def forge_snapshot(recs):
    fetched = next(r for r in recs if r["trigger"] == "fetched")
    fetched["data"]["snapshot"]["rsi"] = 12.5  # the candles journaled with it say otherwise
    return "\\(FETCH\\)"


def forge_fill(recs):
    submitted = next(r for r in recs if r["trigger"] == "submitted")
    submitted["data"]["fill"]["shares"] = "100.0000"  # the venue's journaled answer filled fewer
    return "\\(SUBMIT\\)"


def forge_transition(recs):
    settled = next(r for r in recs if r["trigger"] == "settled")
    settled["dst"] = "IDLE"  # AWAIT_SETTLE --settled--> RECORD is the only row
    return "no such row"


@pytest.mark.parametrize("forge", [forge_snapshot, forge_fill, forge_transition], ids=lambda f: f.__name__)
def test_a_record_edited_by_hand_is_refused(tmp_path, forge):
    from tests.fakes import run
    run(tmp_path, FakeFeed(lambda k: "UP"), FakeVenue(), CFG)
    recs = records(tmp_path)
    match = forge(recs)
    rewrite(tmp_path / "journal.jsonl", recs)
    with pytest.raises(ReplayMismatch, match=match):
        engine.load(tmp_path / "journal.jsonl")


def test_an_unfinished_session_of_an_older_journal_schema_is_not_resumed(tmp_path):
    from fsm_bot.errors import StateDirError
    from tests.fakes import run
    run(tmp_path, FakeFeed(lambda k: "UP"), FakeVenue(), CFG)
    recs = records(tmp_path)
    for r in recs:
        r["v"] = 1
    rewrite(tmp_path / "journal.jsonl", recs)
    with pytest.raises(StateDirError, match="schema 1"):
        engine.load(tmp_path / "journal.jsonl")
