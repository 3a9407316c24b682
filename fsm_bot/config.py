"""One frozen config object: every default and threshold, with its unit and environment variable.

Precedence, lowest first: the defaults below, a TOML file (``--config``; keys may sit in any
table, e.g. ``[risk] max_entry_price = 0.55``), a ``.env`` file, the environment (``FSM_BOT_<KEY>``),
then command-line flags. A bad value stops at start with a message naming the field.
Secrets never live here: ``wiring.py`` alone reads them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from fsm_bot.envfile import environment, read_dotenv  # noqa: F401 (config.environment() is the entry point)
from fsm_bot.errors import ConfigError
from fsm_bot.money import CENT, decimal
from fsm_bot.redact import LOOPBACK_HOSTS, shown, url_faults
from fsm_bot.values import frozen

ENV_PREFIX = "FSM_BOT_"
Rule = tuple[Callable[[Any], bool], str]  # a setting's check, and what the error says when it fails


def _setting(default: Any, unit: str, doc: str, rule: Rule | tuple[None, str] = (None, "")) -> Any:
    return field(default=default, metadata={"unit": unit, "doc": doc, "check": rule[0], "why": rule[1]})


def _open(lo: float, hi: float) -> Rule:
    return (lambda v: lo < v < hi), f"must be in ({lo:g}, {hi:g})"


def _span(lo: float, hi: float) -> Rule:
    return (lambda v: lo <= v <= hi), f"must be {lo}..{hi}"


POSITIVE: Rule = (lambda v: v > 0), "must be > 0"
NON_NEGATIVE: Rule = (lambda v: v >= 0), "must be >= 0"
# Money is exact as JSON numbers (15 digits, fees at 5 decimals) below MONEY_LIMIT_USD; $1 staked at 0.001 wins 999.
CAPITAL_MIN_USD, CAPITAL_MAX_USD, MONEY_LIMIT_USD, BEST_PAYOFF = Decimal(1), Decimal(10) ** 9, Decimal(10) ** 10, 999
CAPITAL: Rule = ((lambda v: CAPITAL_MIN_USD <= v <= CAPITAL_MAX_USD and v == v.quantize(CENT)), "must be "
                 "1..1000000000 USD in whole cents: below $1 no order fits; beyond, trades.jsonl's money is not exact")
AMOUNT: Rule = (lambda v: 0 < v <= CAPITAL_MAX_USD), "must be > 0 and at most 1000000000"

URL: Rule = ((lambda v: not url_faults(v)), "must be an https:// or wss:// URL (plain http:// or ws:// only on a "
             "loopback host) with no user, password, query, fragment or key in it: secrets come from credentials only")


def is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS


@frozen
class Config:
    # session
    capital_usd: Decimal = _setting(Decimal(100), "USD", "starting capital", CAPITAL)
    intervals: int = _setting(18, "intervals", "intervals in a session", _span(1, 100_000))
    interval_minutes: int = _setting(5, "minutes", "market length: 5 or 15", ((lambda v: v in (5, 15)), "must be 5 or 15"))
    policy: str = _setting("tiered", "", "prediction policy: tiered or strict",
                           ((lambda v: v in ("tiered", "strict")), "must be 'tiered' or 'strict'"))
    seed: int = _setting(1, "", "seed of the simulated venue's book", _span(0, 2 ** 32 - 1))
    # strategy (SPEC 5)
    candles: int = _setting(100, "candles", "closed 1-minute candles per decision", _span(40, 1000))
    rsi_period: int = _setting(14, "candles", "RSI period", _span(2, 30))
    macd_fast: int = _setting(12, "candles", "MACD fast EMA", _span(2, 30))
    macd_slow: int = _setting(26, "candles", "MACD slow EMA", _span(3, 60))
    macd_signal: int = _setting(9, "candles", "MACD signal EMA", _span(2, 30))
    rsi_oversold: float = _setting(30.0, "RSI", "strict: UP needs RSI below this", _open(0, 100))
    rsi_overbought: float = _setting(70.0, "RSI", "strict: DOWN needs RSI above this", _open(0, 100))
    imbalance_up: float = _setting(1.1, "ratio", "strict: UP needs imbalance above this", POSITIVE)
    imbalance_down: float = _setting(0.9, "ratio", "strict: DOWN needs imbalance below this", POSITIVE)
    depth_levels: int = _setting(20, "levels", "order-book levels per side in the imbalance", _span(1, 5000))
    imbalance_candles: int = _setting(5, "candles", "replay imbalance proxy window", _span(1, 100))
    reversion_oversold: float = _setting(35.0, "RSI", "tiered, tier 2: UP when RSI below this", _open(0, 100))
    reversion_overbought: float = _setting(65.0, "RSI", "tiered, tier 2: DOWN when RSI above this", _open(0, 100))
    lean_midline: float = _setting(50.0, "RSI", "tiered, tier 3: UP below this RSI, DOWN from it up", _open(0, 100))
    confidence_strict: float = _setting(0.75, "probability", "confidence of a strict signal (the seed's)", _open(0, 1))
    confidence_reversion: float = _setting(0.55, "probability", "confidence of tier 2 (its measured hit rate)", _open(0, 1))
    confidence_lean: float = _setting(0.51, "probability", "confidence of tier 3 (its measured hit rate)", _open(0, 1))
    # risk (SPEC 5)
    floor_fraction: Decimal = _setting(Decimal("0.70"), "fraction", "halt floor as a share of the starting capital", _open(0, 1))
    volatility_max: float = _setting(0.03, "fraction", "skip when the recent high-low range exceeds this", POSITIVE)
    volatility_candles: int = _setting(5, "candles", "window of the volatility check", _span(1, 100))
    stale_secs: int = _setting(120, "seconds", "skip when the last closed candle is older than this", POSITIVE)
    entry_cutoff_secs: int = _setting(60, "seconds", "skip when less than this is left in the interval", NON_NEGATIVE)
    max_entry_price: Decimal = _setting(Decimal("0.60"), "price", "price guard: the highest ask the bot pays", _open(0, 1))
    price_max_usd: float = _setting(1_000_000.0, "USD", "a BTC price above this is invalid data", POSITIVE)
    # sizing (SPEC 5)
    base_usd: Decimal = _setting(Decimal(5), "USD", "stake with no win streak", AMOUNT)
    multiplier: Decimal = _setting(Decimal("1.5"), "x", "stake growth per win in the streak", _span(1, 10))
    cap_usd: Decimal = _setting(Decimal(25), "USD", "largest stake", AMOUNT)
    capital_fraction: Decimal = _setting(Decimal("0.5"), "fraction", "largest stake as a share of capital",
                                         ((lambda v: 0 < v <= 1), "must be in (0, 1]"))
    # venue (SPEC 5, 6)
    fee_rate: Decimal = _setting(Decimal("0.072"), "rate", "taker fee rate where the market does not state its own",
                                 ((lambda v: 0 <= v < 1), "must be in [0, 1)"))
    min_order_usd: Decimal = _setting(Decimal(1), "USD", "smallest marketable order", AMOUNT)
    sim_failed_share: float = _setting(0.0, "fraction", "--sim: share of fills whose trade fails on chain (VOID)", _span(0, 1))
    sim_unmined_share: float = _setting(0.0, "fraction", "--sim: share of fills never mined (VOID if no position)", _span(0, 1))
    sim_confirm_secs: float = _setting(20.0, "seconds", "--sim: a fill's time from match to CONFIRMED (or FAILED) "
                                       "when chain failures are simulated", POSITIVE)
    # network (SPEC 5, 7)
    attempts: int = _setting(3, "attempts", "tries per request on transient errors", _span(1, 10))
    backoff_initial_secs: float = _setting(0.5, "seconds", "first retry delay", NON_NEGATIVE)
    backoff_max_secs: float = _setting(4.0, "seconds", "longest retry delay", NON_NEGATIVE)
    resolution_timeout_secs: int = _setting(900, "seconds", "how long official resolution is polled after an interval "
                                            "ends", NON_NEGATIVE)
    settle_grace_secs: int = _setting(60, "seconds", "after an interval ends: how long a fill not yet on chain, or an "
                                      "order not yet seen, is waited for", NON_NEGATIVE)
    http_timeout_secs: float = _setting(10.0, "seconds", "how long one HTTP request may take before it is given up", POSITIVE)
    ws_stale_secs: float = _setting(30.0, "seconds", "Binance stream silent this long: reconnect and backfill from REST",
                                    POSITIVE)
    book_max_age_ms: int = _setting(5000, "milliseconds", "skip when a Polymarket book was last known current longer "
                                    "before the decision than this", _span(100, 60_000))
    # endpoints (--paper, --live): HTTPS/WSS, or plain http/ws on a loopback host only
    binance_rest_url: str = _setting("https://api.binance.com", "URL", "Binance REST (klines, depth, time)", URL)
    binance_ws_url: str = _setting("wss://stream.binance.com:9443/ws", "URL", "Binance WebSocket streams", URL)
    coingecko_url: str = _setting("https://api.coingecko.com", "URL", "CoinGecko, the last-resort spot price", URL)
    gamma_url: str = _setting("https://gamma-api.polymarket.com", "URL", "Polymarket Gamma (market discovery, resolution)", URL)
    clob_url: str = _setting("https://clob.polymarket.com", "URL", "Polymarket CLOB (books, orders)", URL)
    clob_ws_url: str = _setting("wss://ws-subscriptions-clob.polymarket.com/ws/market", "URL",
                                "Polymarket CLOB market channel (the books, streamed)", URL)
    relayer_url: str = _setting("https://relayer-v2.polymarket.com", "URL", "Polymarket relayer (gasless redeem)", URL)
    data_api_url: str = _setting("https://data-api.polymarket.com", "URL", "Polymarket Data API (positions)", URL)
    rpc_url: str = _setting("https://polygon.drpc.org", "URL", "Polygon JSON-RPC (on-chain reads the SDK makes)", URL)

    @property
    def interval_secs(self) -> int:
        return self.interval_minutes * 60

    @property
    def floor_usd(self) -> Decimal:
        return self.capital_usd * self.floor_fraction

    @property
    def urls(self) -> dict[str, str]:
        """Every base URL the real adapters reach, by setting name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata["unit"] == "URL"}

    def replace(self, **changes: Any) -> "Config":
        return validated(dataclasses.replace(self, **changes))

    def to_json(self) -> dict[str, Any]:
        """Every field, money as exact strings: the journal's first record keeps the session's config."""
        return {f.name: (str(v) if isinstance(v, Decimal) else v) for f in fields(self) for v in [getattr(self, f.name)]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Config":
        return validated(cls(**{name: parse_value(name, value) for name, value in data.items()}))


FIELDS = {f.name: f for f in fields(Config)}


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


DECIMAL_EXPONENT = 30  # every range the fields allow is inside 1e-30..1e30; 1e-999999 would be journaled digit by digit
_KINDS = {"Decimal": "a number 0 or 1e-30..1e30 in size", "int": "a whole number", "float": "a finite number", "str": ""}


def parse_value(name: str, raw: Any, source: str = "") -> Any:
    """One raw value (TOML, env, flag) as the field's type: numbers ASCII, finite, whole for ints; else names it."""
    if name not in FIELDS:
        raise ConfigError(f"{source}unknown setting {name!r}; known settings: {', '.join(sorted(FIELDS))}")
    kind = FIELDS[name].type
    try:
        if isinstance(raw, bool) or (isinstance(raw, str) and kind != "str" and not raw.isascii()):
            raise ValueError
        if kind == "Decimal":
            d = decimal(raw, name)
            if d and not -DECIMAL_EXPONENT <= d.adjusted() <= DECIMAL_EXPONENT:
                raise ValueError
            return d if d else Decimal(0)  # not -0 or 0E-999999, whose digits a journal would spell out
        if kind == "int":
            if isinstance(raw, (float, Decimal)) and raw != int(raw):  # TOML's 5.0 is whole, 5.5 is not
                raise ValueError
            return int(raw)
        if kind == "float":
            value = float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
            return value
        return str(raw)
    except (TypeError, ValueError, OverflowError):
        shown_raw = shown(raw, url=FIELDS[name].metadata["unit"] == "URL")
        raise ConfigError(f"{source}{name}: expected {_KINDS[kind]}, got {shown_raw}") from None


FLAGS = {"capital_usd": "--capital", "intervals": "--intervals", "interval_minutes": "--interval-minutes",
         "policy": "--policy", "seed": "--seed"}
"""Settings that also have a command-line flag, and the flag's name."""


def validated(cfg: Config, origins: Mapping[str, str] | None = None) -> Config:
    """``cfg`` if every field passes its check; the error names the field and where its value came from."""
    origins = origins or {}
    for f in fields(cfg):
        check = f.metadata["check"]
        value = getattr(cfg, f.name)
        if check is not None and not check(value):
            where = f" (from {origins[f.name]})" if f.name in origins else ""
            value = shown(value, url=f.metadata["unit"] == "URL", quote=False)
            raise ConfigError(f"{f.name} = {value}{where}: {f.metadata['why']}")
    if cfg.macd_fast >= cfg.macd_slow:
        raise ConfigError(f"macd_fast = {cfg.macd_fast}: must be below macd_slow = {cfg.macd_slow}")
    lookback = max(cfg.rsi_period + 1, cfg.macd_slow + cfg.macd_signal)
    if cfg.candles < lookback + 10:
        raise ConfigError(f"candles = {cfg.candles}: needs at least {lookback + 10} for RSI and MACD to settle")
    if cfg.rsi_oversold >= cfg.rsi_overbought:
        raise ConfigError(f"rsi_oversold = {cfg.rsi_oversold}: must be below rsi_overbought = {cfg.rsi_overbought}")
    if cfg.reversion_oversold >= cfg.reversion_overbought:
        raise ConfigError(f"reversion_oversold = {cfg.reversion_oversold}: must be below reversion_overbought")
    if cfg.base_usd > cfg.cap_usd:
        raise ConfigError(f"base_usd = {cfg.base_usd}: must not exceed cap_usd = {cfg.cap_usd}")
    if cfg.sim_failed_share + cfg.sim_unmined_share > 1:
        raise ConfigError(f"sim_failed_share + sim_unmined_share = {cfg.sim_failed_share + cfg.sim_unmined_share}: "
                          "must not exceed 1")
    most = cfg.capital_usd + cfg.intervals * cfg.cap_usd * BEST_PAYOFF
    if most >= MONEY_LIMIT_USD:
        raise ConfigError(f"capital_usd + intervals x cap_usd x {BEST_PAYOFF} = {most}: a session could reach more than "
                          f"${MONEY_LIMIT_USD:,}, beyond what its files write exactly; lower one of them")
    if cfg.entry_cutoff_secs >= cfg.interval_secs:
        raise ConfigError(f"entry_cutoff_secs = {cfg.entry_cutoff_secs}: must be shorter than the interval ({cfg.interval_secs} s)")
    return cfg


def _flatten_toml(table: Mapping[str, Any], path: Path) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        items = _flatten_toml(value, path) if isinstance(value, dict) else {key: value}
        for k, v in items.items():
            if k in flat:
                raise ConfigError(f"{path}: setting {k!r} appears twice")
            flat[k] = v
    return flat


def load(config_file: Path | None = None, env: Mapping[str, str] | None = None,
         overrides: Mapping[str, Any] | None = None) -> Config:
    """Defaults < TOML file < environment (with .env merged in) < flags, validated."""
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    if config_file is not None:
        import tomllib  # a resume reads no TOML: imported when a file is given
        try:
            table = tomllib.loads(Path(config_file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # missing, a folder, not UTF-8, not TOML, an int of 4300+ digits
            raise ConfigError(f"--config {config_file}: not a readable TOML file "
                              f"({getattr(exc, 'strerror', None) or str(exc)[:80]})") from None
        for key, raw in _flatten_toml(table, Path(config_file)).items():
            values[key] = parse_value(key, raw, f"{config_file}: ")
            origins[key] = str(config_file)
    for name in FIELDS:
        raw_env = (env or {}).get(env_name(name))
        if raw_env is not None and raw_env != "":
            values[name] = parse_value(name, raw_env, f"{env_name(name)}: ")
            origins[name] = env_name(name)
    for name, raw in (overrides or {}).items():
        if raw is not None:
            flag = FLAGS.get(name, "--" + name.replace("_", "-"))
            values[name] = parse_value(name, raw, f"{flag}: ")
            origins[name] = flag
    return validated(Config(**values), origins)


def describe() -> list[tuple[str, str, str, str, str]]:
    """(name, default, unit, env var, doc) for every setting: the README's table and ``--help``."""
    return [(f.name, str(f.default), f.metadata["unit"], env_name(f.name), f.metadata["doc"]) for f in fields(Config)]
