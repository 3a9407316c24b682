"""The research figures draw the numbers of the frames they are given: the hit rate and trades of each month,
break-even at the traded intervals' average fill, the median and the halt share of the final capital; their
titles say the span, the policy, the fee rate, the capital and the floor; and they are written on tiny inputs."""

import io
import statistics
import struct
from collections import Counter
from contextlib import redirect_stdout
from decimal import Decimal

import polars as pl
import pytest

from fsm_bot import backtest, cli, exact_risk
from fsm_bot.config import Config
from fsm_bot.report import figures

CFG = Config()


def decisions(rows):
    """A decisions frame from (interval_start, action, outcome, fill_price) rows."""
    cols = {c: [] for c in backtest.DECISION_COLUMNS}
    for k, (start, action, outcome, price) in enumerate(rows):
        row = {"session": "s", "interval": k + 1, "interval_start": start, "action": action, "outcome": outcome,
               "fill_price": price}
        for c in cols:
            cols[c].append(row.get(c))
    return pl.DataFrame(cols, schema=backtest._SCHEMA)


def sessions(finals, halts):
    return pl.DataFrame({"final_capital": finals, "halted": halts})


def png_size(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


TWO_MONTHS = decisions([
    ("2024-01-05T10:00:00Z", "trade", "WIN", 0.50), ("2024-01-20T10:05:00Z", "trade", "LOSS", 0.52),
    ("2024-01-31T23:55:00Z", "trade", "WIN", 0.55),  # the month's last interval is January's
    ("2024-01-31T23:50:00Z", "skip:flat_data", "SKIPPED", None), ("2024-02-01T00:00:00Z", "halted", "SKIPPED", None),
    ("2024-02-01T00:05:00Z", "trade", "WIN", 0.51), ("2024-02-02T00:05:00Z", "trade", "LOSS", 0.51),
    ("2024-02-03T00:05:00Z", "trade", "LOSS", 0.51), ("2024-02-04T00:05:00Z", "trade", "LOSS", 0.49),
    ("2024-02-29T23:55:00Z", "trade", "LOSS", 0.49)])


def test_each_month_has_its_trades_wins_rate_and_wilson_interval():
    jan, feb = figures.monthly(TWO_MONTHS, min_trades=4)
    assert (jan.month, jan.trades, jan.wins, feb.month, feb.trades, feb.wins) == ("2024-01", 3, 2, "2024-02", 5, 1)
    assert (jan.rate, feb.rate) == (2 / 3, 1 / 5)
    assert (round(jan.low, 4), round(jan.high, 4)) == (0.2077, 0.9385)  # Wilson 95% of 2 in 3
    assert (round(feb.low, 4), round(feb.high, 4)) == (0.0362, 0.6245)  # of 1 in 5


def test_a_month_under_the_minimum_of_trades_is_faded():
    assert [m.faded for m in figures.monthly(TWO_MONTHS, min_trades=4)] == [True, False]
    assert [m.faded for m in figures.monthly(TWO_MONTHS, min_trades=3)] == [False, False]
    assert [m.faded for m in figures.monthly(TWO_MONTHS)] == [True, True]  # the default minimum is 100


def test_breakeven_is_at_the_average_fill_price_of_the_trades():
    assert figures.average_entry(TWO_MONTHS) == Decimal("0.51")  # 0.50 + 0.52 + 0.55 + 3 x 0.51 + 2 x 0.49 = 4.08, / 8
    assert figures.breakeven(TWO_MONTHS, CFG) == float(Decimal("0.51") * (1 + Decimal("0.072") * Decimal("0.49")))
    assert figures.breakeven(TWO_MONTHS, Config(fee_rate=Decimal(0))) == 0.51
    assert figures.average_entry(TWO_MONTHS.head(3)) == Decimal("0.5233")  # 1.57 / 3, to 4 decimals


def test_without_a_trade_there_is_no_month_and_no_breakeven():
    idle = TWO_MONTHS.filter(pl.col("action") != "trade")
    assert figures.monthly(idle) == [] and figures.average_entry(idle) is None and figures.breakeven(idle, CFG) is None


def test_the_histogram_marks_the_median_and_the_share_of_sessions_that_halted():
    odd = figures.capital_marks(sessions([150.25, 70.5, 100.0, 80.0, 120.0], ["drawdown", "below_min_order", "", "", ""]))
    assert (odd.sessions, odd.median, odd.halted, odd.halt_share) == (5, 100.0, 2, 0.4)
    even = figures.capital_marks(sessions([70.5, 80.0, 100.0, 120.0], ["", "", "", ""]))
    assert (even.median, even.halted, even.halt_share) == (90.0, 0, 0.0)
    assert figures.capital_marks(pl.DataFrame()) == figures.Marks(0, None, 0, None)


def test_a_month_label_names_the_year_where_it_changes():
    assert figures.month_labels(["2023-11", "2023-12", "2024-01", "2024-02"]) == ["Nov\n2023", "Dec", "Jan\n2024", "Feb"]
    assert figures.month_labels(["2023-12", "2024-02", "2024-04"]) == ["Dec\n2023", "Feb\n2024", "Apr"]


def test_the_bins_are_a_width_people_read():
    assert [figures.nice(x) for x in (5.1, 2.19, 0.3, 1.0, 7.9, 26.0, 0.0)] == [5, 2, 0.25, 1, 5, 25, 1]


def test_the_span_is_the_first_and_last_interval_in_utc():
    assert figures.span(TWO_MONTHS) == "2024-01-05 to 2024-02-29 UTC"
    assert figures.span(TWO_MONTHS.head(1)) == "2024-01-05 10:00-10:00 UTC"


def test_the_titles_name_the_span_policy_fee_capital_and_floor():
    cfg = Config(policy="strict", capital_usd=Decimal(200), fee_rate=Decimal("0.05"))
    both = (figures.capital_title(sessions([150.0], [""]), TWO_MONTHS, cfg), figures.monthly_title(TWO_MONTHS, cfg))
    for title in both:
        assert "2024-01-05 to 2024-02-29 UTC" in title and "policy strict" in title and "fee rate 5.0%" in title
        assert r"start \$200.00" in title and r"floor \$140.00" in title and "$" not in title.replace(r"\$", "")
    assert "of 1 back-to-back 18-interval sessions" in both[0]


def test_the_risk_rows_carry_the_capital_and_floor_its_title_names():
    cfg = Config(capital_usd=Decimal(200), intervals=6)
    row = exact_risk.exact(cfg, 0.5, Decimal("0.51"), Decimal("0.05"))
    assert (row["capital_usd"], row["floor_usd"], row["fee_rate"]) == (200.0, 140.0, 0.05)
    title = figures.risk_title([row])
    assert "6-interval sessions" in title and "all 64 win/loss sequences" in title
    assert r"fee rate 5.0% · start \$200.00 · floor \$140.00" in title


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A real backtest over twelve hours of the bundled data (some of its sessions halt): its files and plots."""
    tmp = tmp_path_factory.mktemp("bt")
    with redirect_stdout(io.StringIO()):
        code = cli.main(["backtest", "--from", "2024-03-13T00:00:00Z", "--to", "2024-03-13T12:00:00Z", "--out",
                         str(tmp / "out"), "--decisions", str(tmp / "d.parquet"), "--json"])
    assert code == 0
    return tmp


def test_a_backtests_figures_draw_the_numbers_of_its_decisions(run):
    d = pl.read_parquet(run / "d.parquet")
    traded = [r for r in d.iter_rows(named=True) if r["action"] == "trade"]
    trades, wins = Counter(r["interval_start"][:7] for r in traded), Counter(
        r["interval_start"][:7] for r in traded if r["outcome"] == "WIN")
    months = figures.monthly(d)
    assert [(m.month, m.trades, m.wins) for m in months] == [(k, trades[k], wins[k]) for k in sorted(trades)]
    assert sum(trades.values()) > 20  # a real span, not an empty one
    price = (sum(Decimal(repr(r["fill_price"])) for r in traded) / len(traded)).quantize(Decimal("0.0001"))
    assert figures.breakeven(d, CFG) == float(price * (1 + CFG.fee_rate * (1 - price)))


def test_a_backtests_histogram_marks_the_median_and_halts_of_its_sessions(run):
    rows = pl.read_parquet(run / "out" / "sessions.parquet").to_dicts()
    marks = figures.capital_marks(pl.DataFrame(rows))
    halted = sum(bool(r["halted"]) for r in rows)
    assert (marks.sessions, marks.halted) == (len(rows), halted) and len(rows) > halted > 0
    assert marks.median == statistics.median(r["final_capital"] for r in rows)
    assert marks.halt_share == halted / len(rows)


def test_the_figures_are_pngs_of_their_size(run, fsm, tmp_path):
    assert fsm("risk", "--win-rate", "0.5,0.55", "--price", "0.51", "--monte-carlo", "0", "--plot",
               tmp_path / "risk.png").code == 0
    for path in (run / "out" / "final_capital.png", run / "out" / "hit_rate_by_month.png", tmp_path / "risk.png"):
        w, h = figures.SIZES[path.name]
        assert png_size(path) == (round(w * figures.DPI), round(h * figures.DPI)), path.name


def test_tiny_inputs_are_drawn_one_session_and_no_trade(tmp_path):
    idle = TWO_MONTHS.filter(pl.col("action") != "trade")
    written = figures.backtest(sessions([70.0], ["below_min_order"]), idle, tmp_path, CFG)
    assert [png_size(p) for p in written] == [(990, 528), (1100, 616)]
    (tmp_path / "none").mkdir()
    written = figures.backtest(pl.DataFrame(), idle.head(0), tmp_path / "none", CFG)  # no session at all
    assert [png_size(p) for p in written] == [(990, 528), (1100, 616)]
