"""The checks of the network: every base URL the mode reaches, the clock against the venues', the geoblock.

One attempt each, ``cfg.http_timeout_secs`` long; an answer below HTTP 500 means the service is up."""

from __future__ import annotations

import time
from typing import Callable

from fsm_bot.adapters.binance.parsers import STREAM_PATH
from fsm_bot.config import Config, env_name
from fsm_bot.doctor.check import FAIL, OK, WARN, Check, message, since, timed

ZERO_ADDRESS = "0x" + "0" * 40
PROBES = {"binance_rest_url": "/api/v3/time", "coingecko_url": "/api/v3/ping", "gamma_url": "/markets?limit=1",
          "clob_url": "/time", "relayer_url": f"/deployed?address={ZERO_ADDRESS}",
          "data_api_url": f"/positions?user={ZERO_ADDRESS}"}
"""What a GET asks of each base URL to see it up (the WebSockets and the RPC node have their own probes; any
other URL setting: its base)."""
SKEW_WARN_SECS, SKEW_FAIL_SECS = 1.0, 30.0


def endpoint(name: str, url: str, timeout: float) -> Check:
    check, fix = f"endpoint:{name}", f"check the network, or {env_name(name)} (now {url})"
    try:
        if name == "binance_ws_url":
            return websocket_up(check, url.rstrip("/") + STREAM_PATH, timeout)
        if name == "clob_ws_url":
            return websocket_up(check, url, timeout)
        if name == "rpc_url":
            return rpc_up(check, url, timeout, fix)
        target = url.rstrip("/") + PROBES.get(name, "/")
        response, ms = timed("GET", target, timeout)
    except Exception as exc:  # noqa: BLE001
        return Check(check, FAIL, f"{url}: {message(exc)}", fix)
    seen = f"GET {target}: HTTP {response.status_code}, {ms} ms"
    return Check(check, FAIL, seen, fix) if response.status_code >= 500 else Check(check, OK, seen)


def websocket_up(check: str, url: str, timeout: float) -> Check:
    import websocket
    t0 = time.monotonic()
    websocket.create_connection(url, timeout=timeout).close()
    return Check(check, OK, f"WebSocket {url}: handshake done, {since(t0)} ms")


def rpc_up(check: str, url: str, timeout: float, fix: str) -> Check:
    """A JSON-RPC ``eth_blockNumber``: a block number is ok; a node that answers without one, a warning."""
    response, ms = timed("POST", url, timeout, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber",
                                                     "params": []})
    seen = f"POST {url} eth_blockNumber: HTTP {response.status_code}, {ms} ms"
    if response.status_code >= 500:
        return Check(check, FAIL, seen, fix)
    try:
        body = response.json()
        return Check(check, OK, f"{seen}, block {int(body['result'], 16)}")
    except (ValueError, KeyError, TypeError):
        return Check(check, WARN, f"{seen}, but no block number in the answer", fix + ": a Polygon JSON-RPC node")


def clock_binance(cfg: Config, now_ms: Callable[[], int]) -> Check:
    before = now_ms()
    response, ms = timed("GET", cfg.binance_rest_url.rstrip("/") + "/api/v3/time", cfg.http_timeout_secs)
    local = (before + now_ms()) // 2
    return skew("clock:binance", "Binance's", local - int(response.json()["serverTime"]), ms, ms / 2)


def clock_clob(cfg: Config, now_ms: Callable[[], int]) -> Check:
    """The CLOB's ``/time`` is in whole seconds: its instant is the middle of that second, +/- 0.5 s."""
    before = now_ms()
    response, ms = timed("GET", cfg.clob_url.rstrip("/") + "/time", cfg.http_timeout_secs)
    local = (before + now_ms()) // 2
    return skew("clock:clob", "the CLOB's", local - (int(response.json()) * 1000 + 500), ms, ms / 2 + 500)


def skew(name: str, whose: str, skew_ms: int, rtt_ms: int, uncertainty_ms: float) -> Check:
    """The verdict on the least the two clocks can differ by, given the round trip and the server's resolution."""
    off = max(0.0, abs(skew_ms) - uncertainty_ms) / 1000
    way = "ahead of" if skew_ms > 0 else "behind"
    detail = (f"this machine's clock is {abs(skew_ms) / 1000:.1f} s {way} {whose} "
              f"(+/- {uncertainty_ms / 1000:.1f} s), {rtt_ms} ms")
    if off > SKEW_FAIL_SECS:
        return Check(name, FAIL, detail, f"sync the clock: chrony/ntpd (off by {off:.0f} s or more: intervals would "
                     "start at the wrong time and the venue may refuse signed requests)")
    if off > SKEW_WARN_SECS:
        return Check(name, WARN, detail, f"sync the clock: chrony/ntpd (off by {off:.1f} s or more)")
    return Check(name, OK, detail)


def geoblock(url: str, timeout: float, live: bool) -> Check:
    """``{"blocked": false}`` ok; ``true`` a fail for --live (a warning for --paper, which places no order)."""
    by_hand = f"open {url} from this machine and read \"blocked\""
    try:
        response, ms = timed("GET", url, timeout)
        body = response.json()
    except Exception as exc:  # noqa: BLE001
        return Check("geoblock", WARN, f"{url}: {message(exc)}", by_hand)
    if not isinstance(body, dict) or not isinstance(body.get("blocked"), bool):
        return Check("geoblock", WARN, f"{url}: HTTP {response.status_code} without \"blocked\": true/false, {ms} ms",
                     by_hand)
    where = "/".join(str(body[k]) for k in ("country", "region") if body.get(k)) or "region not given"
    if body["blocked"]:
        return Check("geoblock", FAIL if live else WARN, f"Polymarket refuses orders from this region ({where})",
                     "trade --live only where Polymarket is available to you (README, Going live, step 1)")
    return Check("geoblock", OK, f"not geoblocked ({where}), {ms} ms")
