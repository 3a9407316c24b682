"""Resume through the real engine with fakes: the session is folded back from the journal and
continues at the exact state; late intervals are skipped, missed ones recorded, held positions
settled, and an order is never sent twice."""

import threading
from decimal import Decimal

import pytest

from fsm_bot import engine, journal, steps
from fsm_bot.config import Config
from fsm_bot.errors import Interrupted, ReplayMismatch
from fsm_bot.session import fold
from tests.fakes import START, FakeClock, FakeFeed, FakeVenue, new_session, records

CFG = Config(intervals=4, capital_usd=Decimal(1000))


class StopAfter:
    """Stops the engine once the journal holds a record with this trigger (or n records)."""

    def __init__(self, stop: threading.Event, trigger: str, interval: int) -> None:
        self.stop, self.trigger, self.interval = stop, trigger, interval

    def on_transition(self, t) -> None:
        if t.step.trigger == self.trigger and t.before.interval == self.interval:
            self.stop.set()


def crashed(tmp, trigger, interval, venue, feed):
    """A session stopped right after the first ``trigger`` record of ``interval``."""
    session, jr = new_session(tmp, CFG)
    stop = threading.Event()
    with pytest.raises(Interrupted):
        engine.Engine(session, jr, FakeClock(START), feed, venue, prompt=[StopAfter(stop, trigger, interval)],
                      stop=stop).run()
    jr.close()


def resume(tmp, venue, feed, now_ms):
    jr, _, history = engine.load(tmp / "journal.jsonl")
    session = history[-1][1]
    final = engine.Engine(session, jr, FakeClock(now_ms), feed, venue, resumed=True).run()
    jr.close()
    return final


def signed(s):
    return s.current.sized.order.signed(s.session, s.interval)


def feed():
    return FakeFeed(lambda k: "UP")


def test_resume_continues_at_the_recorded_state(tmp_path):
    venue = FakeVenue()
    crashed(tmp_path, "approved", 2, venue, feed())
    assert fold(records(tmp_path)).state == "SIZE"
    final = resume(tmp_path, venue, feed(), START + 300_000)
    assert [r.interval_number for r in final.rows()] == [1, 2, 3, 4] and len(venue.orders) == 4


def test_an_interval_whose_entry_window_closed_is_skipped_late_resume(tmp_path):
    venue = FakeVenue()
    crashed(tmp_path, "fetched", 2, venue, feed())
    final = resume(tmp_path, venue, feed(), START + 300_000 + 241_000)  # 59 s left in interval 2
    assert final.trades[1].reason == "late_resume" and final.trades[1].outcome == "SKIPPED"
    assert [r.outcome for r in final.trades[2:]] != ["SKIPPED", "SKIPPED"]
    assert len(venue.orders) == 3


def test_intervals_missed_while_down_are_skipped_missed(tmp_path):
    venue = FakeVenue()
    crashed(tmp_path, "recorded", 1, venue, feed())
    final = resume(tmp_path, venue, feed(), START + 3 * 300_000 + 10_000)  # intervals 2 and 3 are over
    assert [r.reason for r in final.trades[1:3]] == ["missed", "missed"]
    assert final.trades[3].outcome in ("WIN", "LOSS") and len(venue.orders) == 2


def test_resume_in_submit_adopts_the_order_the_venue_already_holds(tmp_path):
    venue = FakeVenue()
    crashed(tmp_path, "sized", 2, venue, feed())
    key = fold(records(tmp_path)).current.sized.order.key
    order = signed(fold(records(tmp_path)))
    venue.accepted[key] = venue.fill(order)  # it reached the venue; its answer was never journaled
    sent_before = len(venue.orders)
    final = resume(tmp_path, venue, feed(), START + 300_000 + 299_000)  # even late: it is filled, so it counts
    assert final.trades[1].order_id == key and final.trades[1].outcome in ("WIN", "LOSS")
    assert len(venue.orders) == sent_before + 2  # intervals 3 and 4 only: never a second order for interval 2


def test_resume_in_submit_sends_the_same_signed_order_if_the_venue_never_saw_it(tmp_path):
    venue = FakeVenue()
    crashed(tmp_path, "sized", 2, venue, feed())
    journaled = signed(fold(records(tmp_path)))
    resume(tmp_path, venue, feed(), START + 300_000 + 10_000)
    assert venue.orders[1] == journaled  # the very bytes journaled before the crash


def test_resume_in_submit_too_late_skips_without_sending(tmp_path):
    venue = FakeVenue()
    crashed(tmp_path, "sized", 2, venue, feed())
    final = resume(tmp_path, venue, feed(), START + 300_000 + 290_000)
    assert final.trades[1].reason == "late_resume" and len(venue.orders) == 1 + 2


def test_a_held_position_settles_after_resume(tmp_path):
    venue = FakeVenue()
    crashed(tmp_path, "submitted", 2, venue, feed())
    final = resume(tmp_path, venue, feed(), START + 2 * 300_000 + 100_000)  # resumed after the interval ended
    assert final.trades[1].outcome in ("WIN", "LOSS") and len(venue.orders) == 4


def test_a_recorded_decision_that_today_decides_differently_is_reported(tmp_path):
    venue = FakeVenue()
    crashed(tmp_path, "predicted", 2, venue, feed())
    path = tmp_path / "journal.jsonl"
    recs = journal.read(path).records
    forged = recs[-1]
    side = forged["data"]["side"]
    forged["data"]["side"] = "DOWN" if side == "UP" else "UP"
    path.write_bytes(b"".join(journal.encode({k: v for k, v in r.items() if k != "crc"}) for r in recs))
    with pytest.raises(ReplayMismatch, match=f"record {forged['seq']} \\(PREDICT\\)"):
        engine.load(path)


def test_replay_check_recomputes_every_decision(tmp_path):
    from tests.fakes import run
    run(tmp_path, feed(), FakeVenue(), CFG)
    recs = records(tmp_path)
    assert {r["src"] for r in recs[1:]} == {"IDLE", "FETCH", "PREDICT", "RISK", "SIZE", "SUBMIT", "AWAIT_SETTLE",
                                            "RECORD"}
    assert engine.replay_check(recs) == len(recs) - 1  # every record but the session's begin


def test_sessions_fold_the_journal_the_engine_wrote(tmp_path):
    from tests.fakes import run
    final = run(tmp_path, feed(), FakeVenue(), CFG)
    *_, (before, after, step, rec) = engine.sessions(records(tmp_path))
    assert after == final and isinstance(step, steps.Step)


def test_the_sim_clock_jumps_exactly_and_shows_its_progress_while_scaled():
    import threading as th
    from fsm_bot.adapters.sim import SimClock
    clock = SimClock(0, speed=2000.0)
    seen = []
    sleeper = th.Thread(target=clock.sleep_until, args=(200_000,))  # 100 ms of wall time
    sleeper.start()
    while sleeper.is_alive():
        seen.append(clock.display_ms())
    sleeper.join()
    assert clock.now_ms() == 200_000 and all(0 <= t <= 200_000 for t in seen) and seen == sorted(seen)
    assert len(set(seen)) > 1  # the live view's countdown moves during the sleep
