"""What a message, a log line or a file may show of a secret: nothing. The one home of masking.

- ``safe_url(url)``: a URL as it may be printed: no user or password, every query value and the
  fragment ``***``, and every path segment that looks like a key ``***`` (a Telegram
  ``bot<digits>:<token>``, a segment of 20 or more characters mixing letters and digits, the segment
  after ``/key/``, ``/token/``, ``/api-key/`` and the like).
- ``scrub(text, secrets)``: ``text`` with every known secret value ``***`` (longest first; values
  shorter than ``MIN_SECRET`` characters are not masked: they would mask ordinary words).
- ``url_faults(url)``: what makes a URL unfit for a setting (a credential in it among others), in words.
- ``shown(value)``: any value as a message may show it.
- ``looks_like_key(text)``: whether a value is or holds a 64-hex-digit private key.
"""

from __future__ import annotations

import re
from typing import Iterable
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
MIN_SECRET = 6

_TELEGRAM = re.compile(r"bot\d+:[A-Za-z0-9_-]+")
_KEY_WORDS = frozenset({"key", "keys", "token", "tokens", "api-key", "api_key", "apikey", "secret", "auth"})
_PRIVATE_KEY = re.compile(r"(?<![0-9a-fA-F])(?:0x)?[0-9a-fA-F]{64}(?![0-9a-fA-F])")
_HOST = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def looks_like_key(text: str) -> bool:
    """True when ``text`` is or contains 64 hex digits in a row (a private key, with or without 0x)."""
    return bool(_PRIVATE_KEY.search(text))


def _keylike(segment: str) -> bool:
    return bool(_TELEGRAM.fullmatch(segment)) or (
        len(segment) >= 20 and any(c.isalpha() for c in segment) and any(c.isdigit() for c in segment))


def _path(path: str) -> str:
    out, after_key_word = [], False
    for segment in path.split("/"):
        secret = bool(segment) and (after_key_word or _keylike(segment))
        out.append(MASK if secret else segment)
        after_key_word = segment.lower() in _KEY_WORDS
    return "/".join(out)


def _query(query: str) -> str:
    """Every value ``***``, the names kept; a part without ``=`` may itself be the secret: ``***``."""
    parts = []
    for part in query.split("&"):
        name, sep, _ = part.partition("=")
        parts.append(f"{name}={MASK}" if sep else (MASK if part else part))
    return "&".join(parts)


def url_faults(url: object) -> list[str]:
    """What makes ``url`` unfit to be a base URL that is journaled, shown and sent requests that carry keys, in
    words (empty: nothing): not an https:// or wss:// URL with a host (plain http:// or ws://, readable on
    the wire, only on a loopback host), characters a URL does not hold, a bad port, or a place that may hold
    a credential (a user or password, a query, a fragment, a key in the path or host)."""
    text = str(url)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises for a port that is not a number in 0..65535)
    except ValueError:
        return ["not a URL, or a bad port"]
    if not parts.scheme or not parts.netloc:
        return ["not a URL"]
    host = parts.netloc.rpartition("@")[2]
    host = host if host.endswith("]") else host.rsplit(":", 1)[0]
    plain = parts.scheme in ("http", "ws") and parts.hostname in LOOPBACK_HOSTS
    found = ["not https:// or wss://" if parts.scheme not in ("https", "wss") and not plain else "",
             "characters a URL does not hold" if not text.isascii() or not text.isprintable() or " " in text else "",
             "no host name" if not parts.hostname or not _HOST.fullmatch(host) else "",
             "a user or password" if "@" in parts.netloc else "", "a query" if "?" in text else "",
             "a fragment" if "#" in text else "", "a key in its path" if _path(parts.path) != parts.path else "",
             "a key in its host" if looks_like_key(parts.netloc) else ""]
    return [f for f in found if f]


def shown(value: object, *, url: bool = False, quote: bool = True, most: int = 40) -> str:
    """``value`` as a message may show it: a URL in its safe form, a value that holds a private key not at all,
    anything longer than ``most`` characters cut short."""
    if url:
        value = safe_url(value)
    try:
        text = repr(value) if quote and isinstance(value, str) else str(value)
    except ValueError:  # an int too long to print
        return "a number of more than 4300 digits"
    if looks_like_key(text):
        return "a value that looks like a private key (not shown)"
    return text if len(text) <= most + 2 else text[:most] + "..."


def safe_url(url: object) -> str:
    """``url`` as it may be printed (see the module's doc); ``***`` for what is not a URL with a scheme and a
    host (there is no telling what of it is a secret)."""
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return MASK
    if not parts.scheme or not parts.netloc:  # no host to tell a user from: nothing of it is safe to show
        return MASK
    host = parts.netloc.rpartition("@")[2]  # the user and password go
    if looks_like_key(host):
        host = MASK
    return urlunsplit((parts.scheme, host, _path(parts.path), _query(parts.query) if parts.query else "",
                       MASK if parts.fragment else ""))


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret value of ``MIN_SECRET`` or more characters replaced by ``***``, longest
    first (so a secret that contains another is masked whole)."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
