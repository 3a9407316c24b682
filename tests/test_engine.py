"""The engine with function-built fakes (seed LLD 9, test_integration.py): the whole pipeline from
data to recorded row, streaks, the halt, and every error kind mapped to its trigger."""

from decimal import Decimal

from fsm_bot.config import Config
from fsm_bot.errors import DataError, FatalError, UnknownOutcome
from fsm_bot.ports import Rejected
from fsm_bot.session import fold
from fsm_bot import engine
from tests.fakes import START, FakeClock, FakeFeed, FakeVenue, book, new_session, records, run

RICH = Config(capital_usd=Decimal(1000))


def triggers(tmp, interval):
    return [r["trigger"] for r in records(tmp) if r["interval"] == interval]


def sides(final):
    return [row.prediction for row in final.trades]


def test_full_trading_cycle(tmp_path):
    run(tmp_path, FakeFeed(lambda k: "UP"), FakeVenue(), Config(intervals=1))
    assert triggers(tmp_path, 1) == ["tick", "fetched", "predicted", "approved", "sized", "submitted", "settled",
                                     "recorded", "reconciled"]


def test_win_streak_flow(tmp_path):
    # three wins grow the stake 5 -> 7.50 -> 11.25 -> 16.87: the outcome always agrees with the prediction
    predictions = {}

    def agree(k):
        return predictions[k]
    venue = FakeVenue()
    feed = FakeFeed(agree)
    original = venue.submit

    def remember(order):
        predictions[order.intent.interval] = order.intent.side
        return original(order)
    venue.submit = remember
    final = run(tmp_path, feed, venue, Config(intervals=4))
    assert [r.position_size for r in final.trades] == [Decimal("5.00"), Decimal("7.50"), Decimal("11.25"),
                                                         Decimal("16.87")]
    assert final.streak == 4 and all(r.outcome == "WIN" for r in final.trades)


def test_loss_resets_streak(tmp_path):
    # win, win, loss: the streak falls to 0 and the next stake is the base again
    plan = {1: True, 2: True, 3: False, 4: True}
    venue, outcomes = FakeVenue(), {}
    original = venue.submit

    def decide(order):
        side = order.intent.side
        outcomes[order.intent.interval] = side if plan[order.intent.interval] else ("DOWN" if side == "UP" else "UP")
        return original(order)
    venue.submit = decide
    final = run(tmp_path, FakeFeed(lambda k: outcomes[k]), venue, Config(intervals=4))
    assert [r.outcome for r in final.trades] == ["WIN", "WIN", "LOSS", "WIN"]
    assert [r.win_streak for r in final.trades] == [1, 2, 0, 1]
    assert final.trades[3].position_size == Decimal("5.00")


def test_drawdown_halt_stops_the_session(tmp_path):
    # every trade loses: the floor-capped stakes walk capital down to the floor, then the session halts
    venue, outcomes = FakeVenue(), {}
    original = venue.submit

    def lose(order):
        outcomes[order.intent.interval] = "DOWN" if order.intent.side == "UP" else "UP"
        return original(order)
    venue.submit = lose
    cfg = Config(intervals=18, capital_usd=Decimal(20))
    final = run(tmp_path, FakeFeed(lambda k: outcomes.get(k, "UP")), venue, cfg)
    assert final.halted in ("drawdown", "below_min_order") and final.state == "HALTED"
    assert final.capital >= cfg.floor_usd
    rows = final.rows()
    assert len(rows) == 18 and len(venue.orders) == len(final.trades) - sum(r.outcome == "SKIPPED" for r in final.trades)
    halted_rows = [r for r in rows if r.reason.startswith("halted:")]
    assert halted_rows and all(r.outcome == "SKIPPED" for r in halted_rows)
    assert records(tmp_path)[-1]["dst"] == "HALTED"


def test_a_data_error_skips_the_interval_with_its_reason(tmp_path):
    def candles(before, count):
        raise DataError("kline payload: close is 'NaN'")
    final = run(tmp_path, FakeFeed(lambda k: "UP", candles=candles), FakeVenue(), Config(intervals=2))
    assert [r.reason for r in final.trades] == ["bad_data", "bad_data"]
    skip = next(r for r in records(tmp_path) if r["trigger"] == "skip")
    assert skip["src"] == "FETCH" and "close is 'NaN'" in skip["data"]["detail"]


def test_a_malformed_book_skips_and_never_orders(tmp_path):
    venue = FakeVenue(books=lambda start: book("1.50"))
    final = run(tmp_path, FakeFeed(lambda k: "UP"), venue, Config(intervals=2))
    assert [r.reason for r in final.trades] == ["invalid_odds"] * 2 and venue.orders == []


def test_a_fatal_error_halts(tmp_path):
    venue = FakeVenue()

    def unauthorized(start):
        raise FatalError("401 Unauthorized/Invalid api key", code="auth")
    venue.books = unauthorized
    final = run(tmp_path, FakeFeed(lambda k: "UP"), venue, Config(intervals=3))
    assert final.halted == "auth" and [r.reason for r in final.rows()] == ["halted:auth"] * 3


def test_a_rejected_order_skips(tmp_path):
    venue = FakeVenue(answer=lambda order: Rejected(order.key, "fok_not_filled"))
    final = run(tmp_path, FakeFeed(lambda k: "UP"), venue, Config(intervals=2))
    assert [r.reason for r in final.trades] == ["rejected:fok_not_filled"] * 2
    assert all(r.prediction in ("UP", "DOWN") and r.outcome == "SKIPPED" for r in final.trades)


def test_an_unknown_submit_is_looked_up_never_resent(tmp_path):
    venue = FakeVenue()

    def lost_answer(order):
        venue.accepted[order.key] = venue.fill(order)  # the venue took it; the answer never came back
        raise UnknownOutcome("read timeout after sending")
    venue.answer = lost_answer
    final = run(tmp_path, FakeFeed(lambda k: "UP"), venue, Config(intervals=2))
    assert len(venue.orders) == 2 and all(r.outcome in ("WIN", "LOSS") for r in final.trades)
    assert triggers(tmp_path, 1)[4:7] == ["sized", "submit_unknown", "submitted"]


def test_an_official_result_that_differs_corrects_capital(tmp_path):
    # reference says UP every time; the official resolution says DOWN for interval 2
    venue = FakeVenue(official=lambda slug: "DOWN" if slug.endswith(str(1710338400 + 300)) else "UP")
    final = run(tmp_path, FakeFeed(lambda k: "UP"), venue, Config(intervals=3))
    corrected = [r for r in final.resolutions if r.status == "corrected"]
    assert [r.interval for r in corrected] == [2] and len(final.resolutions) == 3
    row = final.trades[1]
    assert corrected[0].new_outcome != row.outcome and corrected[0].pnl_change == (
        -row.shares if row.outcome == "WIN" else row.shares)
    assert final.capital == Config().capital_usd + sum(r.pnl for r in final.trades) + corrected[0].pnl_change
    assert final.streak == final.trades[-1].win_streak  # the streak is not rewritten


def test_unresolved_trades_become_unreconciled_after_the_timeout(tmp_path):
    final = run(tmp_path, FakeFeed(lambda k: "UP"), FakeVenue(), Config(intervals=2, resolution_timeout_secs=600))
    assert final.finished and [r.status for r in final.resolutions] == ["unreconciled", "unreconciled"]
    assert final.capital == Config().capital_usd + sum(r.pnl for r in final.trades)


def test_the_fold_of_the_journal_is_the_running_session(tmp_path):
    final = run(tmp_path, FakeFeed(lambda k: "UP" if k % 2 else "DOWN"), FakeVenue(), RICH)
    assert fold(records(tmp_path)) == final


def test_an_official_win_is_redeemed_and_an_official_loss_is_not(tmp_path):
    # the market goes UP every time, officially too: only the intervals predicted UP won and are redeemed
    venue = FakeVenue(official=lambda slug: "UP")
    final = run(tmp_path, FakeFeed(lambda k: "UP"), venue, Config(intervals=4))
    won = [row.interval_number for row in final.trades if row.outcome == "WIN"]
    redeemed = [int(s.rsplit("-", 1)[1]) for s in venue.redeemed]
    assert redeemed == [(final.start_ms + (k - 1) * 300_000) // 1000 for k in won]
    assert won and len(won) < len(final.trades)  # some won and some lost, so both halves are checked


class Heard:
    """What an observer hears, with how many records the journal held at that moment."""

    def __init__(self, jr):
        self.jr, self.heard = jr, []

    def on_transition(self, t):
        self.heard.append((t.step.trigger, t.before.interval, self.jr.next_seq))


def test_observers_hear_the_decision_once_its_order_is_answered_and_prompt_ones_at_once(tmp_path):
    """From the closing candle to the order's answer nothing but the decision runs: the observers (view files,
    log, console) hear those records together after the answer; before the engine waits, they have heard all."""
    session, jr = new_session(tmp_path, Config(intervals=2))
    later, prompt = Heard(jr), Heard(jr)
    engine.Engine(session, jr, FakeClock(START), FakeFeed(lambda k: "UP"), FakeVenue(), observers=[later],
                  prompt=[prompt], decision_first=True).run()
    jr.close()
    assert [h[:2] for h in later.heard] == [h[:2] for h in prompt.heard]  # the same transitions, in order
    first = prompt.heard[0][2]
    assert [seq for _, _, seq in prompt.heard] == list(range(first, first + len(prompt.heard)))  # each at once
    seq_at = {(trigger, k): seq for trigger, k, seq in later.heard}
    answered_2 = seq_at[("submitted", 2)]
    for trigger in ("settled", "recorded"):  # interval 1's, at the boundary where interval 2 is decided
        assert seq_at[(trigger, 1)] == answered_2
    for trigger in ("tick", "fetched", "predicted", "approved", "sized"):
        assert seq_at[(trigger, 2)] == answered_2
    assert seq_at[("submitted", 1)] < answered_2  # interval 1's answer was heard before the engine waited
