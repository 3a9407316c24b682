"""Alerts (``fsm_bot/alerts.py``): a whole session's events reach a loopback webhook in each of the four
forms, in order, as JSON; a hanging or failing webhook changes no file of the session and costs the engine's
thread almost nothing; failures are logged once per endpoint and never show a URL's secret; the queue is
bounded and never blocks."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import statistics
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from fsm_bot import engine
from fsm_bot.alerts import Endpoint, Notifier, events, text_of
from fsm_bot.console import summary
from fsm_bot.errors import ConfigError
from fsm_bot.logs import JsonFormatter
from fsm_bot.money import usd
from fsm_bot.session import Session
from fsm_bot.steps import Reconciled, Recorded, Resolution, Skip, SubmitUnknown, TradeRow
from tests.fakes import START, FakeClock, FakeFeed, FakeVenue, new_session, session_at
from tests.servers.base import JsonServer, Reply

QUIET = logging.getLogger("fsm_bot.quiet")
FILES = ("journal.jsonl", "trades.jsonl", "equity.csv")
FORMS = {"/generic": "", "/botTOKEN123:abc/sendMessage": "?chat_id=42", "/api/webhooks/1/x": "",
         "/services/T/B/X": ""}
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


class Hook:
    """A loopback webhook: each POST's path, query, content type and JSON body, in arrival order. While
    ``gate`` is clear a POST waits in the server (``arrived`` says one came)."""

    def __init__(self) -> None:
        self.server = JsonServer("webhook")
        self.posts: list[tuple[str, dict, str, object]] = []
        self.arrived, self.gate = threading.Event(), threading.Event()
        self.gate.set()
        self.server.route("POST", r"/.*", self._post)

    def _post(self, req) -> Reply:
        self.posts.append((req.path, req.query, req.headers.get("Content-Type", ""), json.loads(req.body)))
        self.arrived.set()
        self.gate.wait(10)
        return Reply(200, {"ok": True})

    @property
    def url(self) -> str:
        return self.server.url

    def bodies(self, path: str) -> list:
        return [body for p, _, _, body in self.posts if p == path]


@pytest.fixture
def hook():
    h = Hook()
    h.server.start()
    yield h
    h.gate.set()
    h.server.stop()


class Lines(logging.Handler):
    """Every record a logger writes, and each as ``bot.log`` would write it."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.log = logging.getLogger(name)
        self.log.handlers[:] = [self]
        self.log.setLevel(logging.DEBUG)
        self.log.propagate = False

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def at(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]

    def lines(self) -> list[str]:
        return [JsonFormatter().format(r) for r in self.records]


class Timed:
    """An observer around another: how long each of its ``on_transition`` calls holds the engine's thread."""

    def __init__(self, inner) -> None:
        self.inner, self.ms = inner, []

    def on_transition(self, t) -> None:
        started = time.perf_counter()
        self.inner.on_transition(t)
        self.ms.append((time.perf_counter() - started) * 1000)


def play(tmp: Path, clock: FakeClock, notifier: Notifier | None = None, observer=None) -> tuple[Session, float]:
    """One whole 18-interval session through the real engine with the fakes (the order's side wins, except
    every third interval), told to ``notifier`` from start to end (its records through ``observer``, if
    given); returns the final session and the engine's run time."""
    tmp.mkdir(exist_ok=True)
    session, jr = new_session(tmp)
    venue, sides = FakeVenue(), {}
    submit = venue.submit

    def remember(order):
        sides[order.intent.interval] = order.intent.side
        return submit(order)
    venue.submit = remember
    feed = FakeFeed(lambda k: sides[k] if k % 3 else {"UP": "DOWN", "DOWN": "UP"}[sides[k]])
    observer = observer or notifier
    observers = engine.session_observers(tmp, venue, QUIET, [observer] if observer else [])
    eng = engine.Engine(session, jr, clock, feed, venue, observers=observers)
    if notifier:
        notifier.start_session(session)
    started = time.perf_counter()
    final = eng.run()
    secs = time.perf_counter() - started
    jr.close()
    if notifier:
        notifier.end_session(final, summary(final))
    return final, secs


def expected(final: Session) -> list[str]:
    traded = [r for r in final.trades if r.outcome in ("WIN", "LOSS")]
    return ["session_start"] + ["trade", "settled"] * len(traded) + ["session_end"]


def test_a_whole_session_reaches_every_form_in_order(hook, tmp_path):
    clock = FakeClock(START)
    urls = [hook.url + path + query for path, query in FORMS.items()]
    notifier = Notifier(urls, Lines("test.alerts.forms").log, clock_ms=clock.now_ms, timeout_secs=5)
    final, _ = play(tmp_path, clock, notifier)
    notifier.close(timeout_secs=10)
    assert len(final.trades) == 18 and not final.halted and notifier.given_up == notifier.dropped == 0
    generic = hook.bodies("/generic")
    assert [e["event"] for e in generic] == expected(final)
    assert all(e["session"] == final.session and e["mode"] == "sim" and TS.fullmatch(e["ts"]) for e in generic)
    assert {e["level"] for e in generic} == {"info"}
    start, end = generic[0], generic[-1]
    assert (start["capital"], start["intervals"], start["policy"], start["start"]) == ("100", 18, "tiered",
                                                                                     "2024-03-13T14:00:00Z")
    assert (end["trades"], end["wins"], end["capital"]) == (18, 12, str(final.capital))
    trades, settled = generic[1:-1:2], generic[2:-1:2]
    for row, trade, done in zip(final.trades, trades, settled):
        assert (trade["interval"], trade["side"], trade["order_id"]) == (row.interval_number, row.prediction,
                                                                          row.order_id)
        assert (done["interval"], done["outcome"], done["pnl"], done["capital"], done["streak"]) == (
            row.interval_number, row.outcome, str(row.pnl), str(row.capital_after), row.win_streak)
    texts = [text_of(e) for e in generic]
    assert texts[2] == (f"fsm-bot {final.session}: interval 1 WIN {usd(final.trades[0].pnl, sign=True)}, capital "
                        f"{usd(final.trades[0].capital_after)}, streak 1")
    telegram = hook.bodies("/botTOKEN123:abc/sendMessage")
    assert telegram == [{"chat_id": "42", "text": text} for text in texts]
    assert hook.bodies("/api/webhooks/1/x") == [{"content": text} for text in texts]
    assert hook.bodies("/services/T/B/X") == [{"text": text} for text in texts]
    assert all(kind == "application/json" and query == {} for _, query, kind, _ in hook.posts)


def test_a_hanging_and_a_failing_webhook_change_nothing_and_cost_the_engine_nothing(hook, tmp_path):
    hook.server.fault("POST", r"^/hang/", "hang", count=10 ** 6, secs=0.5)
    hook.server.fault("POST", r"^/botFAIL", "status", count=10 ** 6, status=500)
    secrets = ("HANGSECRET", "FAILSECRET", "CHATSECRET", "webhooks/99")
    urls = [hook.url + "/hang/api/webhooks/99/HANGSECRET", hook.url + "/botFAILSECRET:x/sendMessage?chat_id=CHATSECRET"]
    _, plain_secs = play(tmp_path / "plain", FakeClock(START))
    clock, lines = FakeClock(START), Lines("test.alerts.bad")
    notifier = Notifier(urls, lines.log, clock_ms=clock.now_ms, timeout_secs=0.1, attempts=2, backoff_secs=0.02)
    timed = Timed(notifier)
    final, bad_secs = play(tmp_path / "bad", clock, notifier, observer=timed)
    closing = time.perf_counter()
    notifier.close(timeout_secs=1.5)
    assert time.perf_counter() - closing < 2.0
    for name in FILES:
        assert (tmp_path / "bad" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes(), name
    mean, worst = statistics.mean(timed.ms), max(timed.ms)
    print(f"notifier on the engine's thread: {len(timed.ms)} calls, mean {mean * 1000:.1f} us, "
          f"p99 {sorted(timed.ms)[int(len(timed.ms) * 0.99)] * 1000:.1f} us, max {worst * 1000:.1f} us; "
          f"engine {bad_secs:.3f} s with the bad webhooks, {plain_secs:.3f} s without")
    assert mean < 1.0 and worst < 5.0, (mean, worst)
    assert bad_secs < max(plain_secs * 1.5, plain_secs + 0.25), (bad_secs, plain_secs)
    assert notifier.given_up >= 4 and notifier.sent == 0 and len(final.trades) == 18
    warnings = lines.at(logging.WARNING)
    assert len([w for w in warnings if "failing" in w]) == 2, warnings
    assert any("(discord) failing: timed out" in w for w in warnings)
    assert any("(telegram) failing: HTTP 500" in w for w in warnings)
    assert all(hook.url in w for w in warnings if "failing" in w)
    shown = "\n".join(lines.lines() + [repr(e) for e in notifier.endpoints])
    assert not [s for s in secrets if s in shown], shown


def test_an_endpoint_is_logged_failing_once_then_recovered(hook, tmp_path):
    hook.server.fault("POST", r"^/flaky$", "status", count=3, status=500)
    session, jr = new_session(tmp_path)
    lines = Lines("test.alerts.flaky")
    notifier = Notifier([hook.url + "/flaky"], lines.log, clock_ms=lambda: START, attempts=1)
    for _ in range(6):
        notifier.start_session(session)
    notifier.close(timeout_secs=5)
    jr.close()
    assert (notifier.sent, notifier.given_up) == (3, 3)
    assert len(lines.at(logging.WARNING)) == 1 and "failing: HTTP 500" in lines.at(logging.WARNING)[0]
    assert lines.at(logging.INFO) == [f"alerts to {hook.url} (generic) recovered; 3 events were not delivered to it"]


def test_transient_failures_are_retried_a_refusal_is_not(hook, tmp_path):
    session, jr = new_session(tmp_path)
    jr.close()
    hook.server.fault("POST", r"^/busy$", "status", count=2, status=503)
    hook.server.fault("POST", r"^/later$", "status", count=1, status=429, headers={"Retry-After": "999"})
    hook.server.fault("POST", r"^/refused$", "status", count=1, status=400)
    lines = Lines("test.alerts.retry")
    notifier = Notifier([hook.url + p for p in ("/busy", "/later", "/refused")], lines.log, clock_ms=lambda: START,
                        attempts=3, backoff_secs=0.01, retry_after_max_secs=0.4)
    started = time.perf_counter()
    notifier.start_session(session)
    notifier.close(timeout_secs=5)
    assert 0.4 <= time.perf_counter() - started < 3  # Retry-After honoured up to the cap
    assert (notifier.sent, notifier.given_up) == (2, 1)
    assert [p for p, *_ in hook.posts] == ["/busy", "/later"]
    assert hook.server.count("POST", "^/refused$") == 1  # a 400 is not retried
    assert lines.at(logging.WARNING) == [f"alerts to {hook.url} (generic) failing: HTTP 400 (attempt 1 of 3); the "
                                         "event was given up; not logged again until it recovers"]


def test_a_full_queue_drops_and_counts_and_never_blocks(hook, tmp_path):
    session, jr = new_session(tmp_path)
    jr.close()
    lines = Lines("test.alerts.full")
    notifier = Notifier([hook.url + "/generic"], lines.log, clock_ms=lambda: START, queue_size=3)
    hook.gate.clear()
    notifier.start_session(session)
    assert hook.arrived.wait(5)  # the sending thread is held in the webhook: the queue fills
    costs = []
    for _ in range(8):
        started = time.perf_counter()
        notifier.start_session(session)
        costs.append(time.perf_counter() - started)
    assert notifier.dropped == 5 and notifier.queue.qsize() == 3 and max(costs) < 0.005
    assert [m for m in lines.at(logging.WARNING) if m.startswith("alert queue full")] == [
        "alert queue full (3 events): events are dropped"]
    hook.gate.set()
    notifier.close(timeout_secs=5)
    assert (notifier.sent, notifier.dropped, notifier.unsent, len(hook.posts)) == (4, 5, 0, 4)


def test_an_observer_never_raises(tmp_path):
    lines = Lines("test.alerts.raise")
    notifier = Notifier(["https://hooks.slack.com/services/T/B/X"], lines.log, clock_ms=lambda: START, queue_size=1)
    notifier.on_transition(object())  # not a transition at all
    notifier.end_session(object(), {})  # type: ignore[arg-type]
    assert lines.at(logging.WARNING) == ["an alert could not be built (AttributeError)"]
    notifier.close(timeout_secs=0)


def test_forms_names_and_refusals():
    forms = {"https://api.telegram.org/bot123:SECRET/sendMessage?chat_id=-100&message_thread_id=7": "telegram",
             "https://discord.com/api/webhooks/1/SECRET": "discord", "https://hooks.slack.com/SECRET": "slack",
             "https://example.com/services/T/B/SECRET": "slack", "https://example.com/SECRET?k=v": "generic"}
    for url, form in forms.items():
        endpoint = Endpoint.parse(url)
        assert endpoint.form == form and "SECRET" not in endpoint.name + repr(endpoint)
    telegram = Endpoint.parse(next(iter(forms)))
    assert telegram.post_url == "https://api.telegram.org/bot123:SECRET/sendMessage"
    assert telegram.body({"event": "halt", "level": "critical", "session": "s", "interval": 3, "cause": "drawdown",
                          "detail": "d"}) == {"chat_id": "-100", "message_thread_id": "7",
                                              "text": "fsm-bot s: CRITICAL: session HALTED at interval 3: drawdown (d)"}
    for bad in ("http://example.com/SECRET", "ftp://example.com/SECRET", "SECRET",
                "https://api.telegram.org/bot1:SECRET/sendMessage"):
        with pytest.raises(ConfigError) as refused:
            Endpoint.parse(bad)
        assert "SECRET" not in str(refused.value)


def test_a_halt_is_critical_and_ends_the_session_critical(hook, tmp_path):
    clock = FakeClock(START)
    notifier = Notifier([hook.url + "/generic"], Lines("test.alerts.halt").log, clock_ms=clock.now_ms)
    session, jr = new_session(tmp_path)
    venue = FakeVenue()
    eng = engine.Engine(session, jr, clock, FakeFeed(lambda k: "UP"), venue,
                        observers=engine.session_observers(tmp_path, venue, QUIET, [notifier]))
    final = eng.run()
    jr.close()
    notifier.end_session(final, summary(final))
    notifier.close(timeout_secs=10)
    sent = hook.bodies("/generic")
    assert final.halted == "below_min_order"
    halts = [e for e in sent if e["event"] == "halt"]
    assert [(e["level"], e["cause"], e["interval"]) for e in halts] == [("critical", "below_min_order", final.interval)]
    assert (sent[-1]["event"], sent[-1]["level"], sent[-1]["halted"]) == ("session_end", "critical", "below_min_order")
    assert text_of(sent[-1]).startswith(f"fsm-bot {final.session}: CRITICAL: session halted (below_min_order): ")


def test_error_skips_unknown_answers_voids_and_corrections_are_events():
    s = session_at()
    row = TradeRow(timestamp="2024-03-13T14:15:00Z", interval_number=4, prediction="UP", confidence=0.51,
                   odds=None, position_size=Decimal(0), shares=Decimal(0), fee=Decimal(0), outcome="VOID",
                   pnl=Decimal(0), capital_after=Decimal("95.5"), win_streak=0, reason="trade_failed", order_id="0xab")
    voided = Resolution(interval=2, status="voided", provisional="WIN", official=None, old_outcome="WIN",
                        new_outcome="VOID", pnl_change=Decimal("-4.09"), capital_after=Decimal("95.91"))
    steps = [Skip(reason="insufficient_balance", detail="balance 3 < stake 5"), Skip(reason="no_signal"),
             SubmitUnknown(key="0x1234567890abcdef", detail="read timed out"), Recorded(row=row),
             Reconciled(results=(voided, dataclasses.replace(voided, status="confirmed")))]
    record = {"interval": 4, "ts": "2024-03-13T14:16:00.000Z"}
    got = [e for step in steps for e in events(engine.Transition(s, s, step, record))]
    assert [(e["event"], e["level"], e["interval"]) for e in got] == [
        ("skip", "error", 4), ("submit_unknown", "error", 4), ("settled", "error", 4), ("correction", "error", 2)]
    assert [text_of(e).split(": ", 1)[1] for e in got] == [
        "ERROR: interval 4 skipped: insufficient_balance (balance 3 < stake 5)",
        "ERROR: interval 4 order 0x1234567890 answer unknown: read timed out",
        "ERROR: interval 4 VOID (trade_failed), capital $95.50",
        "ERROR: interval 2 corrected (voided): WIN -> VOID, PnL -$4.09, capital $95.91"]
    assert json.loads(json.dumps(got)) == got
