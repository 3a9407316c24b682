"""``data binance`` and ``data polymarket``: the download commands' bodies (parse, call, print)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from fsm_bot.cli.options import output, usage, when
from fsm_bot.errors import DataError, EnvironmentFailure, TransientError

SHOWN = 5


def data(args: argparse.Namespace) -> int:
    try:
        return {"binance": binance, "polymarket": polymarket}[args.dataset](args)
    except TransientError as exc:
        raise EnvironmentFailure(f"{exc}; the file keeps what came before: the same command continues") from None


def binance(args: argparse.Namespace) -> int:
    from fsm_bot.datasets import binance as source
    first_ms, end_ms = span(args, 60, begun=False)
    rest = fetcher(args.rest_url, "--rest-url", "binance", "binance_rest_url")
    dump = fetcher(args.dump_url, "--dump-url", "data.binance.vision") if args.source == "dump" else None
    parquet_out(args.out)
    try:
        with bar(args, "candles") as progress:
            report = source.download(source.Klines(rest, dump), args.out, first_ms, end_ms, args.source,
                                     progress=progress)
    finally:
        for client in (rest, dump):
            if client is not None:
                client.close()
    report["retry_wait_secs"] = round(sum(rest.waits) + sum(dump.waits if dump else []), 1)
    print(json.dumps(report, indent=2) if args.json else "\n".join(candle_lines(report)))
    if "error" in report:
        raise DataError(report["error"], code="conflicting_duplicates")
    return 0


def polymarket(args: argparse.Namespace) -> int:
    from fsm_bot.datasets import polymarket as source
    first_ms, end_ms = span(args, args.interval_minutes * 60, begun=True)
    gamma = fetcher(args.gamma_url, "--gamma-url", "gamma", "gamma_url")
    clob = fetcher(args.clob_url, "--clob-url", "clob", "clob_url")
    parquet_out(args.out)
    lead = args.interval_minutes if args.lead_minutes is None else args.lead_minutes
    markets = source.Markets(gamma, clob, args.interval_minutes, lead, int(time.time() * 1000))
    try:
        with bar(args, "windows") as progress:
            report = source.download(markets, args.out, first_ms, end_ms, progress=progress)
    finally:
        gamma.close()
        clob.close()
    print(json.dumps(report, indent=2) if args.json else "\n".join(market_lines(report)))
    return 0


# -- flags -------------------------------------------------------------------------------------------
def instant(text: str, flag: str, grid_secs: int) -> int:
    """``--from``/``--to``: a date (its UTC midnight), ISO-8601 UTC or unix seconds, on the grid; ms."""
    ms = when(text, flag, grid_secs)
    assert ms is not None
    return ms


def span(args: argparse.Namespace, grid_secs: int, *, begun: bool) -> tuple[int, int]:
    """[--from, --to) in ms, its end brought back to now: to the last closed grid step, or with ``begun`` to the
    step in progress (a candle must have closed; a window's market exists once it has begun)."""
    first_ms, end_ms = instant(args.first, "--from", grid_secs), instant(args.last, "--to", grid_secs)
    if end_ms <= first_ms:
        raise usage(f"--to {args.last}: not after --from {args.first}")
    grid_ms, now_ms = grid_secs * 1000, int(time.time() * 1000)
    now_edge = now_ms // grid_ms * grid_ms + (grid_ms if begun else 0)
    if first_ms >= now_edge:
        raise usage(f"--from {args.first}: in the future; nothing has happened there yet")
    return first_ms, min(end_ms, now_edge)


def fetcher(url: str | None, flag: str, name: str, setting: str | None = None) -> Any:
    """A download client for ``url`` (the config's ``setting`` when the flag is not given)."""
    from fsm_bot import config
    from fsm_bot.adapters.http import Backoff
    from fsm_bot.datasets.binance import DUMP_URL
    from fsm_bot.datasets.client import Fetcher
    from fsm_bot.redact import shown, url_faults
    cfg = config.load(None, config.environment())
    url = url or (getattr(cfg, setting) if setting else DUMP_URL)
    faults = url_faults(url)
    if faults:
        raise usage(f"{flag} {shown(url, url=True)}: {', '.join(faults)}")
    return Fetcher(url, name=name, timeout_secs=cfg.http_timeout_secs,
                   backoff=Backoff(cfg.attempts, cfg.backoff_initial_secs, cfg.backoff_max_secs))


@contextlib.contextmanager
def bar(args: argparse.Namespace, unit: str) -> Iterator[Any]:
    """A rich progress bar on stderr when it is a terminal (and not --json); yields its update function."""
    if not sys.stderr.isatty() or args.json:
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress
    with Progress(console=Console(stderr=True), transient=True) as shown:
        task = shown.add_task(f"{args.dataset} {unit}", total=None)
        yield lambda done, total: shown.update(task, completed=done, total=total)


# -- reports -----------------------------------------------------------------------------------------
def few(items: list[Any]) -> str:
    text = ", ".join(map(str, items[:SHOWN]))
    return text + (f" and {len(items) - SHOWN:,} more" if len(items) > SHOWN else "")


def candle_lines(r: dict[str, Any]) -> list[str]:
    gaps = few([f"{g['from']} ({g['minutes']:,} min)" for g in r["gap_list"]])
    rest = f", REST for {len(r['rest_days'])} day(s) not in the dump yet ({few(r['rest_days'])})" if r["rest_days"] \
        else ""
    return [f"wrote {r['file']}: {r['candles']:,} candles ({r['kept']:,} kept, {r['added']:,} added); "
            f"span {r['from']} to {r['to']}: {r['candles_in_span']:,} of {r['minutes_in_span']:,} minutes",
            f"sources         {len(r['monthly_files'])} monthly and {len(r['daily_files'])} daily dump file(s) "
            f"({r['microsecond_files']} in microseconds){rest}; {r['rest_requests']} REST request(s)",
            f"duplicates      {r['duplicates_dropped']:,} identical row(s) dropped, "
            f"{len(r['conflicting_duplicates'])} conflicting" + (f": {few(r['conflicting_duplicates'])}"
                                                                 if r["conflicting_duplicates"] else ""),
            f"gaps            {r['gaps']:,} ({r['missing_minutes']:,} missing minutes)" + (f": {gaps}" if gaps else ""),
            "ohlc            " + ("; ".join(f"{rule} broken by {v['count']:,} ({few(v['first'])})"
                                            for rule, v in r["ohlc"].items()) or "every candle consistent"),
            f"waits           {r['weight_waits']} for the request weight, {r['retry_wait_secs']:g} s before retries"]


def market_lines(r: dict[str, Any]) -> list[str]:
    res, by = r["resolved"], r["resolved_by"]
    lines = [f"wrote {r['file']}: {r['rows']:,} rows; {r['windows']:,} windows of {r['interval_minutes']} minutes "
             f"from {r['from']} to {r['to']} ({r['already_in_file']:,} already in the file, "
             f"{r['fetched_again_unresolved']:,} unresolved there fetched again)",
             f"markets         {r['markets']:,} found, {len(r['missing_markets']):,} missing"
             + (f": {few(r['missing_markets'])}" if r["missing_markets"] else ""),
             f"resolutions     {res['Up']:,} Up, {res['Down']:,} Down, {len(r['unresolved']):,} unresolved"
             + (f" ({few(r['unresolved'])})" if r["unresolved"] else "")
             + f"; {by['gamma']:,} from Gamma outcomePrices, {by['clob']:,} from the CLOB's winner flags",
             f"price history   {r['price_points']:,} points; {len(r['without_history']):,} market(s) without any "
             "(one placeholder row each)" + (f": {few(r['without_history'])}" if r["without_history"] else "")
             + (f"; tokens without: {few(r['tokens_without_history'])}" if r["tokens_without_history"] else "")]
    if r["unusable_markets"]:
        lines.append(f"unusable        {len(r['unusable_markets']):,} market(s), not written: "
                     + few([f"{u['slug']} ({u['reason']})" for u in r["unusable_markets"]]))
    return lines


def parquet_out(out: Path) -> None:
    """The download's file, checked before anything is fetched: a parquet file, named so."""
    output(out, "--out", folder=False)
    if out.suffix.lower() != ".parquet":
        raise usage(f"--out {out}: the download is written as parquet: give a name ending in .parquet")
