"""Prometheus metrics (``fsm_bot/metrics_server.py``): served on a loopback port from a private registry,
scraped during a whole session run through the real engine, the counters move and the gauges agree with the
session."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
import requests
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from fsm_bot import engine
from fsm_bot.config import Config
from fsm_bot.errors import ConfigError
from fsm_bot.metrics_server import Metrics, serve, stop
from fsm_bot.ports import Rejected
from fsm_bot.steps import Recorded
from tests.fakes import START, FakeClock, FakeFeed, FakeVenue, new_session

QUIET = logging.getLogger("fsm_bot.quiet")


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


class Scraper:
    """An observer that fetches ``/metrics`` at the session's first record and once interval 2 is recorded."""

    def __init__(self, url: str) -> None:
        self.url, self.scrapes = url, []

    def scrape(self) -> dict:
        reply = requests.get(self.url, timeout=5)
        reply.raise_for_status()
        self.scrapes.append(samples(reply.text))
        return self.scrapes[-1]

    def on_transition(self, t) -> None:
        if not self.scrapes or isinstance(t.step, Recorded) and t.step.row.interval_number == 2:
            self.scrape()


def run(tmp, metrics, *extra, venue=None, cfg=None):
    session, jr = new_session(tmp, cfg)
    venue = venue or FakeVenue()
    metrics.start_session(session)
    observers = engine.session_observers(tmp, venue, QUIET, [metrics, *extra])
    final = engine.Engine(session, jr, FakeClock(START), FakeFeed(lambda k: "UP"), venue, observers=observers).run()
    jr.close()
    return final


@pytest.fixture
def served():
    metrics = Metrics(reconnects=lambda: 3)
    server, thread = serve(metrics, "127.0.0.1", 0)
    yield metrics, f"http://127.0.0.1:{server.server_port}/metrics"
    stop(server, thread)


def test_a_scrape_during_the_session_and_at_its_end(served, tmp_path):
    metrics, url = served
    scraper = Scraper(url)
    final = run(tmp_path, metrics, scraper, cfg=Config(capital_usd=Decimal(1000)))
    before, during, after = *scraper.scrapes, scraper.scrape()

    def intervals(s):
        return sum(v for (name, _), v in s.items() if name == "fsm_bot_intervals_total")
    assert (intervals(before), intervals(during), intervals(after)) == (0, 2, len(final.trades))
    assert before[("fsm_bot_capital_usd", ())] == 1000.0 and not final.halted
    assert after[("fsm_bot_capital_usd", ())] == pytest.approx(float(final.capital))
    assert after[("fsm_bot_streak", ())] == final.streak
    assert after[("fsm_bot_interval", ())] == min(final.interval, final.intervals)
    assert after[("fsm_bot_drawdown_from_start_ratio", ())] == pytest.approx(float(final.drawdown))
    assert after[("fsm_bot_stream_reconnects_total", ())] == 3
    assert after[("fsm_bot_last_candle_age_seconds", ())] >= 0
    traded = [r for r in final.trades if r.outcome in ("WIN", "LOSS")]
    for outcome in ("WIN", "LOSS"):
        assert after[("fsm_bot_intervals_total", (("outcome", outcome),))] == sum(r.outcome == outcome for r in traded)
    count = after[("fsm_bot_decision_seconds_count", ())]
    assert count == after[("fsm_bot_orders_total", (("result", "submitted"),))] == len(traded) > 0
    assert during[("fsm_bot_decision_seconds_count", ())] == 2
    assert 0 < after[("fsm_bot_decision_seconds_sum", ())] < 10 * count
    assert not [n for n in REGISTRY._names_to_collectors if n.startswith("fsm_bot")]  # a private registry


def test_refusals_count_as_rejected_orders_and_skips(tmp_path):
    metrics = Metrics()
    venue = FakeVenue(answer=lambda order: Rejected(order.key, "fok_not_filled"))
    final = run(tmp_path, metrics, venue=venue, cfg=Config(intervals=3))
    value = metrics.registry.get_sample_value
    assert all(r.reason == "rejected:fok_not_filled" for r in final.trades)
    assert value("fsm_bot_orders_total", {"result": "rejected"}) == 3
    assert value("fsm_bot_skips_total", {"reason": "rejected:fok_not_filled"}) == 3
    assert value("fsm_bot_intervals_total", {"outcome": "SKIPPED"}) == 3
    assert value("fsm_bot_decision_seconds_count") == 0


def test_an_observer_never_raises_and_a_bad_counter_reads_nan(tmp_path):
    metrics = Metrics(reconnects=lambda: 1 // 0)
    metrics.on_transition(object())
    assert metrics.errors == 1
    assert metrics.registry.get_sample_value("fsm_bot_stream_reconnects_total") != 0  # NaN: unknown, not zero


def test_stop_closes_the_port_and_a_taken_port_is_a_config_error():
    metrics = Metrics()
    server, thread = serve(metrics, "127.0.0.1", 0)
    port = server.server_port
    with pytest.raises(ConfigError, match="cannot listen"):
        serve(Metrics(), "127.0.0.1", port)
    stop(server, thread)
    assert not thread.is_alive()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
