"""``fsm-bot data binance`` against loopback Binance servers serving real candles (``tests/servers/binance_data.py``):
the file equals the source, resumes without duplicates, paces itself, and reports what the data lacks."""

import json
import os
import socket
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, strategies as st

from fsm_bot.adapters.sim import BUNDLED, load_candles
from fsm_bot.datasets import binance, klines
from fsm_bot.datasets.client import Fetcher
from fsm_bot.errors import DataError
from tests.servers.binance_data import FakeKlines, FakeVision, csv_lines, zipped

DEV = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "btcusdt_1m_dev.parquet"


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def between(candles: pl.DataFrame, first: str, end: str) -> pl.DataFrame:
    t = candles.get_column("open_time").dt.epoch("ms")
    return candles.filter((t >= ms(first)) & (t < ms(end)))


@pytest.fixture(scope="module")
def year_end():
    """Real candles 2024-11-30 to 2025-01-02: a month of ms times, days of microsecond times after it."""
    if not DEV.is_file():
        pytest.skip("the shared dev data is not here")
    return between(pl.read_parquet(DEV), "2024-11-30T00:00:00Z", "2025-01-03T00:00:00Z")


@pytest.fixture(scope="module")
def sample():
    return pl.read_parquet(BUNDLED)  # 2024-03-11 to 2024-03-14, four whole days


@pytest.fixture
def serve():
    started = []

    def start(server):
        started.append(server.start())
        return server
    yield start
    for server in started:
        server.stop()


@pytest.fixture
def quick(monkeypatch):
    """One attempt per request: a failure is final at once."""
    monkeypatch.setenv("FSM_BOT_ATTEMPTS", "1")


def download(fsm, out, first, end, rest, vision=None, *extra):
    urls = ["--rest-url", rest.url] + (["--dump-url", vision.url] if vision else ["--source", "rest"])
    result = fsm("data", "binance", "--from", first, "--to", end, "--out", out, "--json", *urls, *extra)
    return result, (json.loads(result.out) if result.out.startswith("{") else None)


def test_the_dump_download_equals_the_source_candles_and_backtests(fsm, serve, year_end, tmp_path):
    rest = serve(FakeKlines(year_end))
    vision = serve(FakeVision(year_end, unpublished=("BTCUSDT-1m-2025-01-02",)))
    out = tmp_path / "candles.parquet"
    result, report = download(fsm, out, "2024-11-30T12:00:00Z", "2025-01-02T06:00:00Z", rest, vision)
    assert result.code == 0, result.err
    assert report["monthly_files"] == ["BTCUSDT-1m-2024-12"]
    assert report["daily_files"] == ["BTCUSDT-1m-2024-11-30", "BTCUSDT-1m-2025-01-01"]
    assert report["microsecond_files"] == 1 and report["rest_days"] == ["2025-01-02"]
    assert (report["gaps"], report["duplicates_dropped"], report["ohlc"]) == (0, 0, {})
    got = pl.read_parquet(out)
    expected = between(year_end, "2024-11-30T12:00:00Z", "2025-01-02T06:00:00Z")
    assert got.schema == expected.schema and got.equals(expected) and got.height == 47_160
    assert load_candles(out).height == got.height
    done = fsm("backtest", "--data", out, "--from", "2024-12-01T00:00:00Z", "--to", "2024-12-01T00:00:00Z",
               "--out", tmp_path / "backtest", "--json")
    assert done.code == 0, done.err
    assert json.loads(done.out)["sessions"] == 1


def test_an_interrupted_download_resumes_after_its_last_candle_without_duplicates(fsm, serve, sample, tmp_path,
                                                                                   quick):
    rest = serve(FakeKlines(sample))
    rest.down_after(3)  # the first day (two pages) and a page of the second, then silence
    out = tmp_path / "candles.parquet"
    result, _ = download(fsm, out, "2024-03-11", "2024-03-14", rest)
    assert result.code == 6 and "the same command continues" in result.err and "Traceback" not in result.err
    assert pl.read_parquet(out).equals(between(sample, "2024-03-11T00:00:00Z", "2024-03-12T00:00:00Z"))
    rest.up()
    asked = len(rest.hits)
    again, report = download(fsm, out, "2024-03-11", "2024-03-14", rest)
    assert again.code == 0, again.err
    assert (report["kept"], report["added"], report["duplicates_dropped"]) == (1440, 2880, 0)
    assert int(rest.hits[asked][1]["startTime"]) == ms("2024-03-12T00:00:00Z")
    assert pl.read_parquet(out).equals(between(sample, "2024-03-11T00:00:00Z", "2024-03-14T00:00:00Z"))


def test_retry_after_is_waited_out_before_the_next_request(fsm, serve, sample, tmp_path):
    rest = serve(FakeKlines(sample))
    rest.throttle(1)
    result, report = download(fsm, tmp_path / "c.parquet", "2024-03-12T00:00:00Z", "2024-03-12T02:00:00Z", rest)
    assert result.code == 0, result.err
    (refused_at, _, status), (next_at, query, _) = rest.hits[:2]
    assert status == 429 and next_at - refused_at >= 1.0
    assert query["startTime"] == str(ms("2024-03-12T00:00:00Z")) and report["retry_wait_secs"] >= 1


def test_near_the_weight_limit_the_download_waits_for_the_next_minute(serve, sample, tmp_path):
    """The server says 5,402 of 6,000 used at every answer: after each page, a wait to the next minute (the
    clock stands 20 s into one)."""
    rest = serve(FakeKlines(sample, weight_base=5_400))
    waits = []
    source = binance.Klines(Fetcher(rest.url, name="binance"), None, now_secs=lambda: 1_710_201_620.0,
                            pause=waits.append)
    report = binance.download(source, tmp_path / "c.parquet", ms("2024-03-12T00:00:00Z"),
                              ms("2024-03-12T20:00:00Z"), "rest")
    assert report["rest_requests"] == 2 and report["weight_waits"] == 2 and waits == [40.5, 40.5]
    calm = binance.Klines(Fetcher(serve(FakeKlines(sample)).url, name="binance"), None, pause=waits.append)
    binance.download(calm, tmp_path / "d.parquet", ms("2024-03-12T00:00:00Z"), ms("2024-03-12T20:00:00Z"), "rest")
    assert calm.sources.weight_waits == 0 and len(waits) == 2


def test_gaps_are_reported_and_never_filled(fsm, serve, sample, tmp_path):
    t = sample.get_column("open_time").dt.epoch("ms")
    holes = [ms("2024-03-12T10:00:00Z") + i * 60_000 for i in range(5)] + [ms("2024-03-12T12:00:00Z")]
    rest = serve(FakeKlines(sample.filter(~t.is_in(holes))))
    out = tmp_path / "c.parquet"
    result, report = download(fsm, out, "2024-03-12", "2024-03-13", rest)
    assert result.code == 0, result.err
    assert (report["gaps"], report["missing_minutes"], report["candles_in_span"]) == (2, 6, 1434)
    assert report["gap_list"] == [{"from": "2024-03-12T10:00Z", "until": "2024-03-12T10:05Z", "minutes": 5},
                                  {"from": "2024-03-12T12:00Z", "until": "2024-03-12T12:01Z", "minutes": 1}]
    assert pl.read_parquet(out).height == 1434
    text = fsm("data", "binance", "--from", "2024-03-12", "--to", "2024-03-13", "--out", tmp_path / "e.parquet",
               "--source", "rest", "--rest-url", rest.url)
    assert "gaps            2 (6 missing minutes): 2024-03-12T10:00Z (5 min), 2024-03-12T12:00Z (1 min)" in text.out


def test_a_conflicting_duplicate_stops_the_download_and_an_identical_one_is_dropped(fsm, serve, sample, tmp_path):
    vision = serve(FakeVision(sample))
    day11, day12 = (vision.lines(f"BTCUSDT-1m-2024-03-{d}").splitlines(keepends=True) for d in (11, 12))
    vision.publish("BTCUSDT-1m-2024-03-11", "".join(day11[:100] + day11[99:]))  # line 100 twice
    conflicting = day12[500].split(",")
    conflicting[4] = f"{float(conflicting[4]) + 1:.8f}"  # the same minute, another close
    vision.publish("BTCUSDT-1m-2024-03-12", "".join(day12[:501] + [",".join(conflicting)] + day12[501:]))
    out = tmp_path / "c.parquet"
    result, report = download(fsm, out, "2024-03-11", "2024-03-14", serve(FakeKlines(sample)), vision)
    assert result.code == 1 and "disagree, first 2024-03-12T08:20Z" in result.err
    assert report["duplicates_dropped"] == 1 and report["conflicting_duplicates"] == ["2024-03-12T08:20Z"]
    assert pl.read_parquet(out).equals(between(sample, "2024-03-11T00:00:00Z", "2024-03-12T00:00:00Z"))


def test_an_inconsistent_candle_is_reported_and_kept_as_it_came(fsm, serve, sample, tmp_path):
    vision = serve(FakeVision(sample))
    lines = vision.lines("BTCUSDT-1m-2024-03-13").splitlines(keepends=True)
    fields = lines[60].split(",")
    fields[2] = f"{float(fields[4]) - 5:.8f}"  # a high below the close
    vision.publish("BTCUSDT-1m-2024-03-13", "".join(lines[:60] + [",".join(fields)] + lines[61:]))
    out = tmp_path / "c.parquet"
    result, report = download(fsm, out, "2024-03-13", "2024-03-14", serve(FakeKlines(sample)), vision)
    assert result.code == 0, result.err
    assert report["ohlc"] == {"high >= max(open, close)": {"count": 1, "first": ["2024-03-13T01:00Z"]}}
    assert pl.read_parquet(out).get_column("high")[60] == float(fields[2])


def test_a_file_whose_checksum_differs_is_refused(fsm, serve, sample, tmp_path, quick):
    vision = serve(FakeVision(sample))
    vision.corrupt("BTCUSDT-1m-2024-03-11")
    out = tmp_path / "c.parquet"
    result, _ = download(fsm, out, "2024-03-11", "2024-03-12", serve(FakeKlines(sample)), vision)
    assert result.code == 1 and "BTCUSDT-1m-2024-03-11.zip: sha256" in result.err and "CHECKSUM" in result.err
    assert vision.requested() == ["BTCUSDT-1m-2024-03-11.zip"] * 2 and not out.exists()


def test_an_existing_file_of_another_schema_is_left_alone(fsm, serve, sample, tmp_path):
    out = tmp_path / "c.parquet"
    sample.drop("trades").write_parquet(out)
    before = out.read_bytes()
    result, _ = download(fsm, out, "2024-03-11", "2024-03-12", serve(FakeKlines(sample)))
    assert result.code == 2 and f"--out {out}: exists with other columns" in result.err
    assert out.read_bytes() == before


@pytest.mark.parametrize("flag, value, says", [
    ("--from", "yesterday", "--from 'yesterday': expected ISO-8601"),
    ("--from", "2024-03-11T00:00:30Z", "not on the 1-minute grid"),
    ("--to", "2024-03-10", "--to 2024-03-10: not after --from"),
    ("--rest-url", "ftp://example.com", "--rest-url"),
    ("--dump-url", "http://example.com", "--dump-url"),
])
def test_a_bad_flag_stops_naming_it(fsm, tmp_path, flag, value, says):
    argv = {"--from": "2024-03-11", "--to": "2024-03-12", "--out": str(tmp_path / "c.parquet"), flag: value}
    result = fsm("data", "binance", *(x for kv in argv.items() for x in kv))
    assert result.code == 2 and says in result.err and "Traceback" not in result.err


def test_a_folder_as_out_is_refused(fsm, tmp_path):
    result = fsm("data", "binance", "--from", "2024-03-11", "--to", "2024-03-12", "--out", tmp_path)
    assert result.code == 2 and "--out" in result.err and "is a folder" in result.err


def test_a_server_that_never_answers_is_one_clear_message(fsm, tmp_path, quick):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    result = fsm("data", "binance", "--from", "2024-03-11", "--to", "2024-03-12", "--out", tmp_path / "c.parquet",
                 "--source", "rest", "--rest-url", closed)
    assert result.code == 6 and "Traceback" not in result.err
    assert "binance GET /api/v3/klines: ConnectionError: connection refused (after 1 attempt)" in result.err


# -- the kline parser ------------------------------------------------------------------------------------
decimals = st.decimals(min_value=0, max_value=10**6, places=8, allow_nan=False).map(lambda d: f"{d:.8f}")
minutes = st.integers(min_value=ms("2017-08-17T00:00:00Z") // 60_000, max_value=ms("2099-01-01T00:00:00Z") // 60_000)


def row(minute: int, values: list[str], trades: int, micro: bool) -> list:
    unit = 1000 if micro else 1
    t = minute * 60_000 * unit
    return [t, *values[:5], t + 60_000 * unit - 1, values[5], trades, values[6], values[7], "0"]


@given(minutes, st.lists(decimals, min_size=8, max_size=8), st.integers(0, 10**9), st.booleans())
def test_a_kline_row_parses_to_its_values_in_ms(minute, values, trades, micro):
    got = klines.parse(pl.DataFrame([[str(v) for v in row(minute, values, trades, micro)]],
                                    schema=dict.fromkeys(klines.FIELDS, pl.String), orient="row"), "test row")
    assert got.schema == klines.SCHEMA
    assert got.with_columns(pl.col("open_time").dt.epoch("ms")).row(0) == (
        minute * 60_000, *map(float, values[:6]), trades, float(values[6]))


BAD = st.sampled_from(["", "abc", "1e5", "NaN", "inf", "-", "1.", ".5", "1,5", " 1", "0x10", "1.2.3", "١٢"])


@given(minutes, st.lists(decimals, min_size=8, max_size=8), st.sampled_from(range(1, 11)), BAD)
def test_a_kline_with_a_bad_number_is_refused_naming_the_field_and_the_value(minute, values, index, bad):
    fields = [str(v) for v in row(minute, values, 7, False)]
    fields[index] = bad
    with pytest.raises(DataError) as refused:
        klines.page([fields], "binance klines row")
    message = str(refused.value)
    assert f"binance klines row 0 {klines.FIELDS[index]}: expected" in message and repr(bad) in message


def test_a_dump_file_with_microsecond_times_is_read_in_ms(sample):
    day = between(sample, "2024-03-12T00:00:00Z", "2024-03-13T00:00:00Z")
    candles, micro = klines.read_zip(zipped("x", csv_lines(day, micro=True)), "x.zip")
    assert micro and candles.equals(day)


def test_a_from_after_the_files_end_is_refused_before_anything_is_fetched(fsm, serve, sample, tmp_path):
    """Appending 2024-03-13 to a file that ends on 2024-03-11 would leave a day missing, unreported."""
    rest = serve(FakeKlines(sample))
    out = tmp_path / "candles.parquet"
    assert download(fsm, out, "2024-03-11", "2024-03-12", rest)[0].code == 0
    before, asked = pl.read_parquet(out), len(rest.hits)
    result, _ = download(fsm, out, "2024-03-13", "2024-03-14", rest)
    assert result.code == 2 and "--from 2024-03-13" in result.err and "1,440 minutes missing" in result.err, result.err
    assert "give --from 2024-03-12T00:00Z" in result.err and "Traceback" not in result.err
    assert len(rest.hits) == asked and pl.read_parquet(out).equals(before)
    right_after, report = download(fsm, out, "2024-03-12", "2024-03-14", rest)
    assert right_after.code == 0 and report["gaps"] == 0 and report["added"] == 2880


def test_the_file_has_the_umasks_permissions_and_an_append_keeps_the_files(fsm, serve, sample, tmp_path):
    rest = serve(FakeKlines(sample))
    out = tmp_path / "candles.parquet"
    old = os.umask(0o022)
    try:
        assert download(fsm, out, "2024-03-11", "2024-03-12", rest)[0].code == 0
        assert out.stat().st_mode & 0o777 == 0o644  # readable by the group and others, as any file made here
        out.chmod(0o640)
        assert download(fsm, out, "2024-03-11", "2024-03-13", rest)[0].code == 0
        assert out.stat().st_mode & 0o777 == 0o640 and pl.read_parquet(out).height == 2 * 1440
    finally:
        os.umask(old)


def test_an_out_not_named_parquet_is_refused_before_anything_is_fetched(fsm, serve, sample, tmp_path):
    rest = serve(FakeKlines(sample))
    result, _ = download(fsm, tmp_path / "candles.csv", "2024-03-11", "2024-03-12", rest)
    assert result.code == 2 and "ending in .parquet" in result.err and not rest.hits
    assert not (tmp_path / "candles.csv").exists()
