"""``fsm-bot data polymarket`` against a loopback Gamma and CLOB answering from real recorded markets
(``tests/servers/polymarket_data.py``): the file has the recorded-prices schema, the recorded points and
resolutions; missing markets and markets without history are reported, never invented."""

import io
import json
import time
from contextlib import redirect_stderr
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from fsm_bot import cli
from tests.servers.polymarket_data import (SHARED, FakePolymarketData, fifteen_minute_2026_01, five_minute_2026_02,
                                           five_minute_2026_05)

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="the shared samples are not here")
TIME = pl.Datetime("ms", "UTC")
SCHEMA = {"window_start": TIME, "window_end": TIME, "interval_minutes": pl.Int32, "slug": pl.String,
          "condition_id": pl.String, "resolved_outcome": pl.String, "outcome": pl.String, "token_id": pl.String,
          "t": TIME, "price": pl.Float64}
MISSING = "btc-updown-15m-1768005000"  # 2026-01-10 00:30
UNSETTLED = "btc-updown-15m-1768004100"  # 00:15: Gamma says ["0","0"], the CLOB's winner flags settle it
NO_HISTORY = ["btc-updown-15m-1768000500", "btc-updown-15m-1768001400"]  # 23:15, 23:30: none was recorded


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


@pytest.fixture(scope="module")
def january():
    return fifteen_minute_2026_01()


@pytest.fixture
def serve():
    started = []

    def start(recorded, **kw):
        started.append(FakePolymarketData(recorded, **kw).start())
        return started[-1]
    yield start
    for fake in started:
        fake.stop()


def download(fsm, fake, out, first, end, *extra):
    result = fsm("data", "polymarket", "--from", first, "--to", end, "--out", out, "--gamma-url", fake.gamma.url,
                 "--clob-url", fake.clob.url, "--json", *extra)
    return result, (json.loads(result.out) if result.out.startswith("{") else None)


def fifteen(fsm, fake, out, first="2026-01-09T23:15:00Z", end="2026-01-10T06:00:00Z"):
    return download(fsm, fake, out, first, end, "--interval-minutes", "15", "--lead-minutes", "16")


def fetched(fsm, fake, out, *span, fifteen_minutes=True):
    """A download that succeeds: its file and its report."""
    result, report = (fifteen if fifteen_minutes else download)(fsm, fake, out, *span)
    assert result.code == 0, result.err
    return pl.read_parquet(out), report


def test_the_file_holds_the_recorded_points_and_resolutions_in_the_schema(fsm, serve, january, tmp_path):
    got, report = fetched(fsm, serve(january, missing=(MISSING,), unsettled=(UNSETTLED,)), tmp_path / "p.parquet")
    assert dict(got.schema) == SCHEMA
    markets = january.markets.filter(pl.col("window_start").is_between(ms("2026-01-09T23:15:00Z"),
                                                                       ms("2026-01-10T05:45:00Z")))
    assert report["windows"] == markets.height == 27 and report["markets"] == 26
    assert report["missing_markets"] == [MISSING] and MISSING not in got.get_column("slug").to_list()
    recorded = dict(markets.select("slug", "resolved_outcome").iter_rows())
    assert dict(got.select("slug", "resolved_outcome").unique().iter_rows()) == {
        s: o for s, o in recorded.items() if s != MISSING}
    assert report["resolved_by"] == {"gamma": 25, "clob": 1} and report["unresolved"] == []
    points = got.drop_nulls("t").select("token_id", pl.col("t").dt.epoch("ms"), "price").sort("token_id", "t")
    tokens = pl.concat([markets.filter(pl.col("slug") != MISSING).select(pl.col(c).alias("token_id"))
                        for c in ("up_token", "down_token")])
    expected = january.history.join(tokens, on="token_id").sort("token_id", "t")
    assert points.equals(expected) and report["price_points"] == expected.height == 24 * 34


def test_a_market_without_history_gets_one_placeholder_row(fsm, serve, january, tmp_path):
    got, report = fetched(fsm, serve(january), tmp_path / "p.parquet", "2026-01-09T23:15:00Z", "2026-01-10T00:00:00Z")
    placeholders = got.filter(pl.col("t").is_null())
    assert placeholders.get_column("slug").to_list() == NO_HISTORY == report["without_history"]
    assert placeholders.get_column("price").null_count() == 2 and placeholders.get_column("outcome").to_list() == [
        "Up", "Up"]
    up_tokens = dict(january.markets.select("slug", "up_token").iter_rows())
    assert placeholders.get_column("token_id").to_list() == [up_tokens[s] for s in NO_HISTORY]
    assert got.group_by("slug").len().sort("slug").get_column("len").to_list() == [1, 1, 34]


def test_an_interrupted_download_continues_with_the_windows_it_lacks(fsm, serve, january, tmp_path, monkeypatch):
    monkeypatch.setenv("FSM_BOT_ATTEMPTS", "1")
    fake = serve(january, unsettled=(UNSETTLED,))
    cid = january.markets.filter(pl.col("slug") == UNSETTLED).item(0, "condition_id")
    fake.clob.fault("GET", f"/markets/{cid}", "status", status=503)
    out = tmp_path / "prices.parquet"
    result, _ = fifteen(fsm, fake, out)
    assert result.code == 6 and f"clob GET /markets/{cid}: HTTP 503 (after 1 attempt)" in result.err
    assert pl.read_parquet(out).get_column("slug").n_unique() == 4  # the windows before 00:15
    asked = fake.gamma.count("GET", "/markets")
    again, report = fifteen(fsm, fake, out)
    assert again.code == 0, again.err
    assert report["already_in_file"] == 4 and fake.gamma.count("GET", "/markets") - asked == 23
    whole = serve(january, unsettled=(UNSETTLED,))
    fifteen(fsm, whole, tmp_path / "whole.parquet")
    assert pl.read_parquet(out).equals(pl.read_parquet(tmp_path / "whole.parquet"))


def test_an_unresolved_market_is_null_and_fetched_again_on_the_next_run(fsm, serve, tmp_path):
    february = five_minute_2026_02()
    fake, out = serve(february), tmp_path / "p.parquet"
    got, report = fetched(fsm, fake, out, "2026-02-28T14:00:00Z", "2026-02-28T14:35:00Z", fifteen_minutes=False)
    assert report["unresolved"] == ["btc-updown-5m-1772289000"] and len(report["without_history"]) == 7
    recorded = dict(february.markets.select("slug", "resolved_outcome").iter_rows())
    assert all(recorded[s] == o for s, o in got.select("slug", "resolved_outcome").iter_rows())
    assert got.height == 7 and got.get_column("resolved_outcome").null_count() == 1
    asked = fake.gamma.count("GET", "/markets")
    again, report = download(fsm, fake, out, "2026-02-28T14:00:00Z", "2026-02-28T14:35:00Z")
    assert (report["already_in_file"], report["fetched_again_unresolved"]) == (6, 1)
    assert fake.gamma.count("GET", "/markets") - asked == 1 and pl.read_parquet(out).equals(got)


def test_five_minute_markets_carry_their_recorded_prices(fsm, serve, tmp_path):
    may = five_minute_2026_05()
    got, report = fetched(fsm, serve(may), tmp_path / "p.parquet", "2026-05-18T13:40:00Z", "2026-05-18T14:00:00Z",
                          fifteen_minutes=False)
    got = got.filter(pl.col("slug") == "btc-updown-5m-1779112200")
    assert got.select("outcome", "price", pl.col("t").dt.epoch("ms")).rows() == [
        ("Down", 0.455, ms("2026-05-18T13:51:00Z")), ("Up", 0.545, ms("2026-05-18T13:51:00Z"))]
    assert got.get_column("condition_id")[0] == (
        "0xd3e325007c6a94f0e1b597683931a39f5968e05ce2e4f86f7ff8e86c9f440a86")
    recorded = may.markets.filter(pl.col("window_start").is_between(ms("2026-05-18T13:40:00Z"),
                                                                    ms("2026-05-18T13:55:00Z")))
    assert report["resolved"] == {o: recorded.get_column("resolved_outcome").to_list().count(o) for o in ("Up", "Down")}
    assert set(got.get_column("resolved_outcome")) == {"Up"} and report["price_points"] == 2 * recorded.height


def test_the_file_loads_as_backtest_prices(fsm, serve, january, tmp_path):
    recorded = pytest.importorskip("fsm_bot.adapters.recorded")
    out = tmp_path / "prices.parquet"
    assert fifteen(fsm, serve(january), out)[0].code == 0
    assert recorded.SCHEMA == SCHEMA and recorded.intervals(out) == [15]
    recorded.load_prices(out, 15)


def test_a_429_waits_out_its_retry_after(fsm, serve, january, tmp_path):
    fake = serve(january)
    fake.gamma.fault("GET", "/markets", "status", status=429, headers={"Retry-After": "1"})
    began = time.monotonic()
    result, report = fifteen(fsm, fake, tmp_path / "p.parquet", end="2026-01-09T23:45:00Z")
    assert result.code == 0, result.err
    assert time.monotonic() - began >= 1.0
    assert [s for m, p, s in fake.gamma.log][:2] == [429, 200] and report["markets"] == 2


def test_a_malformed_history_is_reported_and_its_market_not_written(fsm, serve, january, tmp_path):
    fake = serve(january)
    fake.clob.fault("GET", "/prices-history", "raw", body=b'{"history": [{"t": "soon", "p": 0.5}]}')
    got, report = fetched(fsm, fake, tmp_path / "p.parquet", "2026-01-09T23:15:00Z", "2026-01-09T23:45:00Z")
    (unusable,) = report["unusable_markets"]
    assert unusable["slug"] == NO_HISTORY[0] and "t 'soon' is not unix seconds" in unusable["reason"]
    assert got.get_column("slug").to_list() == [NO_HISTORY[1]]


@pytest.mark.parametrize("argv, says", [
    (["--interval-minutes", "10"], "--interval-minutes: invalid choice"),
    (["--interval-minutes", "15", "--from", "2026-01-09T23:20:00Z"], "not on the 15-minute grid"),
    (["--gamma-url", "http://gamma.example.com"], "--gamma-url"),
    (["--lead-minutes", "-1"], "--lead-minutes"),
])
def test_a_bad_flag_stops_naming_it(tmp_path, argv, says):
    base = {"--from": "2026-01-09T23:15:00Z", "--to": "2026-01-10T00:00:00Z", "--out": str(tmp_path / "p.parquet")}
    flags = dict(base, **dict(zip(argv[::2], argv[1::2])))
    err = io.StringIO()
    with redirect_stderr(err):
        try:
            code = cli.main(["data", "polymarket", *(x for kv in flags.items() for x in kv)])
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code
    assert code == 2 and says in err.getvalue() and "Traceback" not in err.getvalue()


def test_a_candle_file_as_out_is_left_alone(fsm, serve, january, tmp_path):
    from fsm_bot.adapters.sim import BUNDLED
    out = tmp_path / "candles.parquet"
    out.write_bytes(Path(BUNDLED).read_bytes())
    result, _ = fifteen(fsm, serve(january), out)
    assert result.code == 2 and "exists with other columns than the recorded-prices schema" in result.err
    assert out.read_bytes() == Path(BUNDLED).read_bytes()


def test_a_file_holding_the_other_length_is_added_to_not_taken_for_done(fsm, serve, tmp_path):
    """Fifteen-minute markets start on five-minute boundaries too: a file holding them does not make a download
    of five-minute markets skip those windows, nor lose them (backtest --prices reads such a file by length)."""
    february = five_minute_2026_02()
    fake, span = serve(february), ("2026-02-28T14:00:00Z", "2026-02-28T14:35:00Z")
    five, _ = fetched(fsm, fake, tmp_path / "five.parquet", *span, fifteen_minutes=False)
    quarter = five.filter(pl.col("window_start").dt.epoch("ms") % (15 * 60_000) == 0)
    assert quarter.height >= 2
    fifteen_rows = quarter.with_columns(interval_minutes=pl.lit(15, pl.Int32),
                                        slug=pl.col("slug").str.replace("-5m-", "-15m-"),
                                        window_end=pl.col("window_end") + pl.duration(minutes=10))
    out = tmp_path / "both.parquet"
    fifteen_rows.write_parquet(out)
    got, report = fetched(fsm, fake, out, *span, fifteen_minutes=False)
    assert report["already_in_file"] == 0 and report["fetched_again_unresolved"] == 0
    assert got.filter(pl.col("interval_minutes") == 15).sort("window_start", "outcome", "t").equals(
        fifteen_rows.sort("window_start", "outcome", "t"))
    assert got.filter(pl.col("interval_minutes") == 5).equals(five)


def test_a_server_that_is_not_the_api_stops_naming_its_flag(fsm, serve, january, tmp_path):
    """Gamma answers an unknown slug with [] and the CLOB a token without history with an empty one: a 404
    there is another server, not "no data" (which a later run with the right URL would then trust)."""
    fake, out = serve(january), tmp_path / "p.parquet"
    for gamma, clob, flag in ((fake.clob.url, fake.clob.url, "--gamma-url"), (fake.gamma.url, fake.gamma.url, "--clob-url")):
        result = fsm("data", "polymarket", "--from", "2026-01-09T23:15:00Z", "--to", "2026-01-10T00:00:00Z",
                     "--interval-minutes", "15", "--out", out, "--gamma-url", gamma, "--clob-url", clob)
        assert result.code == 2 and f"{flag} {gamma if flag == '--gamma-url' else clob}" in result.err, result.err
        assert "404" in result.err and "Traceback" not in result.err
        assert not out.exists() or pl.read_parquet(out).height == 0
