"""What ``--live`` signs and authenticates with, read from the environment or ``.env`` only.

This module imports nothing of the SDK, so ``wiring.py`` can check credentials (and refuse, naming the
variable) before the SDK is loaded. No repr here shows a secret, and no message shows the value of any
credentials variable at all: a key pasted into the wrong one (``FSM_BOT_WALLET``) is a secret there too.
"""

from __future__ import annotations

from typing import Mapping

from fsm_bot.errors import ConfigError
from fsm_bot.redact import looks_like_key
from fsm_bot.values import frozen

DEPOSIT_WALLET = 3
"""POLY_1271, the deposit wallet: what Polymarket's V2 onboarding gives new API users, and the default."""
SIGNATURE_TYPES = {0: "EOA", 1: "POLY_PROXY", 2: "POLY_GNOSIS_SAFE", 3: "POLY_1271 (deposit wallet)"}
SECRET_VARS = ("FSM_BOT_PRIVATE_KEY", "FSM_BOT_CLOB_API_SECRET", "FSM_BOT_CLOB_API_PASSPHRASE",
               "FSM_BOT_RELAYER_API_KEY")


@frozen
class Credentials:
    """The signing key, the wallet it trades for, and the optional API keys. Its repr shows no secret."""

    private_key: str
    wallet: str | None = None  # None: the signer's deposit wallet (or the signer itself for type 0)
    signature_type: int = DEPOSIT_WALLET
    api_key: str | None = None  # CLOB L2 credentials; derived from the key when absent
    api_secret: str | None = None
    api_passphrase: str | None = None
    relayer_api_key: str | None = None  # gasless redeem; without it winnings are not redeemed by the bot
    relayer_address: str | None = None

    def __repr__(self) -> str:
        return (f"Credentials(private_key=***, wallet={self.wallet!r}, signature_type={self.signature_type}, "
                f"api_key={'set' if self.api_key else 'derived'}, relayer={'set' if self.relayer_api_key else 'none'})")

    __str__ = __repr__

    @property
    def secrets(self) -> tuple[str, ...]:
        values = (self.private_key, self.private_key.removeprefix("0x"), self.api_secret, self.api_passphrase,
                  self.relayer_api_key)
        return tuple(v for v in values if v)


def _private_key(env: Mapping[str, str]) -> str:
    key = env.get("FSM_BOT_PRIVATE_KEY", "").strip()
    if not key:
        raise ConfigError("--live needs FSM_BOT_PRIVATE_KEY in the environment or .env (see .env.example)")
    body = key.removeprefix("0x")
    if len(body) != 64 or any(c not in "0123456789abcdefABCDEF" for c in body):
        raise _refused("FSM_BOT_PRIVATE_KEY", key, "64 hex digits (with or without 0x)")
    return "0x" + body


def _refused(name: str, value: str, expected: str) -> ConfigError:
    """A bad value of a credentials variable: the variable and the shape expected, never the value (it may be
    a key pasted into the wrong variable), only its length and, for a key, what it looks like."""
    hint = ("; it looks like a private key, which belongs in FSM_BOT_PRIVATE_KEY only"
            if looks_like_key(value) and name != "FSM_BOT_PRIVATE_KEY" else "")
    got = f"{len(value)} character{'s' * (len(value) != 1)}"
    return ConfigError(f"{name}: expected {expected}; got {got} (the value is not shown){hint}")


def _address(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip() or None
    if value is not None and not (value.startswith("0x") and len(value) == 42
                                  and all(c in "0123456789abcdefABCDEF" for c in value[2:])):
        raise _refused(name, value, "a 0x-prefixed 20-byte address (0x and 40 hex digits)")
    return value


def _signature_type(env: Mapping[str, str]) -> int:
    raw = env.get("FSM_BOT_SIGNATURE_TYPE", "").strip() or str(DEPOSIT_WALLET)
    if not (raw.isascii() and raw.isdigit()) or int(raw) not in SIGNATURE_TYPES:
        raise _refused("FSM_BOT_SIGNATURE_TYPE", raw,
                       "one of " + ", ".join(f"{k} ({v})" for k, v in SIGNATURE_TYPES.items()))
    return int(raw)


def from_env(env: Mapping[str, str]) -> Credentials:
    """``FSM_BOT_PRIVATE_KEY`` (required), ``FSM_BOT_WALLET``, ``FSM_BOT_SIGNATURE_TYPE``, the optional CLOB
    API credentials (all three or none: derived from the key when absent) and the optional relayer API key
    (``FSM_BOT_RELAYER_API_KEY`` with ``FSM_BOT_RELAYER_API_KEY_ADDRESS``) for the gasless redeem."""
    api = [env.get(f"FSM_BOT_CLOB_API_{part}", "").strip() or None for part in ("KEY", "SECRET", "PASSPHRASE")]
    if any(api) and not all(api):
        raise ConfigError("FSM_BOT_CLOB_API_KEY, FSM_BOT_CLOB_API_SECRET and FSM_BOT_CLOB_API_PASSPHRASE go "
                          "together: set all three, or none to derive them from the key")
    relayer = env.get("FSM_BOT_RELAYER_API_KEY", "").strip() or None
    relayer_address = _address(env, "FSM_BOT_RELAYER_API_KEY_ADDRESS")
    if bool(relayer) != bool(relayer_address):
        raise ConfigError("FSM_BOT_RELAYER_API_KEY and FSM_BOT_RELAYER_API_KEY_ADDRESS go together")
    return Credentials(_private_key(env), _address(env, "FSM_BOT_WALLET"), _signature_type(env), *api,
                       relayer_api_key=relayer, relayer_address=relayer_address)


def known_secrets(env: Mapping[str, str]) -> tuple[str, ...]:
    """Every secret value the process can see, for the log's redactor."""
    values = [env.get(name, "").strip() for name in SECRET_VARS]
    return tuple(v for raw in values if raw for v in (raw, raw.removeprefix("0x")))
