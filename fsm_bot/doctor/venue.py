"""The checks of the venue ``start`` would open: the next market, and for ``--live`` the credentials, the
collateral and allowance, and the relayer keys.

The venue is built by ``wiring.world`` (the composition root, the only place that builds adapters) in a
throw-away directory, on a clock that reads the doctor's ``now_ms``. Without usable credentials, or when the
live world cannot be opened, the public side of ``--paper``'s world still checks the next market."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from fsm_bot import wiring
from fsm_bot.adapters.polymarket import credentials
from fsm_bot.adapters.polymarket.credentials import Credentials
from fsm_bot.config import Config
from fsm_bot.doctor.check import FAIL, OK, WARN, Check, guarded, message, since
from fsm_bot.errors import BotError
from fsm_bot.money import ZERO, fee_bound, plain
from fsm_bot.ports import slug

UNLIMITED = 2 ** 255
CREDENTIALS_FIX = "set FSM_BOT_PRIVATE_KEY (and FSM_BOT_WALLET if you know it) in the environment or .env: README, " \
                  "Going live, steps 2 and 5"
MARKET_FIX = "see the gamma_url and clob_url lines above; a new market can take minutes to reach the CLOB: try again"


class DoctorClock:
    """The ``Clock`` port on the doctor's ``now_ms`` (the wall clock, or a test's); waits are wall time."""

    speed = 1.0

    def __init__(self, now_ms: Callable[[], int]) -> None:
        self.now_ms = self.display_ms = now_ms
        self.wake = threading.Event()

    def sleep_until(self, t_ms: int) -> None:
        self.wake.wait(max(0, t_ms - self.now_ms()) / 1000)

    def pause(self, secs: float) -> None:
        self.wake.wait(secs)


def venue_checks(mode: str, cfg: Config, env: dict[str, str],
                 now_ms: Callable[[], int]) -> tuple[list[Check], tuple[str, ...]]:
    """(the checks, the secrets the signed-in venue learned: derived API credentials, for the scrub)."""
    live = mode == "live"
    creds, refused = live_credentials(env) if live else (None, "")
    with tempfile.TemporaryDirectory(prefix="fsm-bot-doctor-") as tmp:
        try:
            w, why = opened(cfg, creds, Path(tmp), DoctorClock(now_ms))
        except Exception as exc:  # noqa: BLE001
            why = f"cannot open the venue: {message(exc)}"
            return [Check("next_market", FAIL, why, MARKET_FIX)] + (not_signed_in(refused or why) if live else []), ()
        try:
            found = [guarded("next_market", next_market, w, cfg, now_ms, fix=MARKET_FIX)]
            if live:
                found += signed_in(w, cfg) if w.mode == "live" else not_signed_in(refused or why)
            return found, (w.venue.secrets if w.mode == "live" else ())
        finally:
            w.close()


def live_credentials(env: dict[str, str]) -> tuple[Credentials | None, str]:
    """(the credentials, or None and why not: the message names the variable, never its value)."""
    try:
        return credentials.from_env(env), ""
    except BotError as exc:
        return None, str(exc)


def opened(cfg: Config, creds: Credentials | None, tmp: Path, clock: DoctorClock) -> tuple[wiring.World, str]:
    """--live's world when there are credentials, else (or when it cannot open) --paper's; (world, why not live)."""
    def world(mode: str) -> wiring.World:
        source = {"kind": mode, "endpoints": wiring.mode_urls(cfg, mode), "clock": "wall"}
        return wiring.world(mode, cfg, source, tmp, creds=creds, clock=clock)
    if creds is None:
        return world("paper"), ""
    try:
        return world("live"), ""
    except Exception as exc:  # noqa: BLE001
        return world("paper"), f"cannot open the live venue: {message(exc)}"


def next_market(w: wiring.World, cfg: Config, now_ms: Callable[[], int]) -> Check:
    """The next interval's market on Gamma, and both its books on the CLOB."""
    public = w.venue.public  # type: ignore[attr-defined]
    market_slug = slug(wiring.next_start(now_ms(), cfg.interval_secs), cfg.interval_minutes)
    t0 = time.monotonic()
    info = public.info(market_slug)
    books = [public.book(token) for token in (info.up_token, info.down_token)]
    asks = ", ".join(f"{side} ask {book.best_ask}" for side, book in zip(("Up", "Down"), books))
    seen = f"{market_slug} on Gamma, both books on the CLOB ({asks}), {since(t0)} ms"
    if info.closed:
        return Check("next_market", FAIL, f"{seen}, but Gamma says it is closed", MARKET_FIX)
    if not info.accepting_orders:
        return Check("next_market", WARN, f"{seen}, not accepting orders yet", "run the doctor again in a minute")
    return Check("next_market", OK, seen)


def not_signed_in(why: str) -> list[Check]:
    return [Check("credentials", FAIL, why, CREDENTIALS_FIX),
            Check("balance", FAIL, "not checked: no signed-in account", "make the credentials work first")]


def signed_in(w: wiring.World, cfg: Config) -> list[Check]:
    """The credentials (the SDK signed in) and, once they work, the collateral."""
    login = guarded("credentials", credentials_work, w.venue, fix=CREDENTIALS_FIX)
    if login.status != OK:
        return [login, Check("balance", FAIL, "not checked: the credentials do not work", "fix the credentials first")]
    return [login, guarded("balance", balance, w.venue, cfg, fix="see README, Going live, steps 3 and 4")]


def credentials_work(venue: Any) -> Check:  # the live venue (its module imports the SDK: not imported here)
    client = venue.sdk()
    return Check("credentials", OK, f"signed in: wallet {client.wallet} ({client.wallet_type}), signer {client.signer}")


def balance(venue: Any, cfg: Config) -> Check:
    """The CLOB's collateral (refreshed first) covers one base stake and its fee bound; the exchange's allowance
    is not 0."""
    venue.account.refresh()
    usd, allowances = venue.account.funds()
    fee = fee_bound(cfg.base_usd, ZERO, cfg.fee_rate).normalize()  # the most a stake pays: shares at the lowest price
    held = f"wallet {venue.sdk().wallet} holds {plain(usd)} pUSD"
    if usd < cfg.base_usd + fee:
        return Check("balance", FAIL, f"{held}: less than one stake (${cfg.base_usd} + up to ${plain(fee)} fee)",
                     "deposit pUSD (collateral) to that wallet: README, Going live, step 3")
    allowance = allowances.get(venue.exchange.lower(), 0)
    if allowance <= 0:
        return Check("balance", FAIL, f"{held}, but its pUSD allowance for the exchange {venue.exchange} is 0",
                     "approve it (polymarket.com's onboarding does; or SecureClient.setup_trading_approvals): "
                     "README, Going live, step 4")
    shown = "unlimited" if allowance >= UNLIMITED else f"{plain(allowance / 10 ** 6)} pUSD"
    return Check("balance", OK, f"{held}; allowance for the exchange {shown}; a base stake needs "
                 f"${plain(cfg.base_usd + fee)} with its fee")


def relayer(env: dict[str, str]) -> Check:
    names = ("FSM_BOT_RELAYER_API_KEY", "FSM_BOT_RELAYER_API_KEY_ADDRESS")
    if all(env.get(name, "").strip() for name in names):
        return Check("relayer", OK, "relayer API key set: winning positions are redeemed by the bot")
    return Check("relayer", WARN, f"no relayer API key ({' and '.join(names)}): winning positions will not be "
                 "redeemed by the bot", "set both (a relayer or builder API key), or redeem on polymarket.com, or "
                 "rely on Polymarket's auto-redeem")
