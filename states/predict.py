"""PREDICT: UP, DOWN or no signal, by the session's policy. Deterministic; every threshold from config.

``strict`` is the seed's rule exactly. ``tiered`` (the default) decides every interval: ``strict``
first, then two fallback tiers of RSI mean reversion, measured on two years of real BTCUSDT
1-minute data (``scripts/strategy_hit_rates.py`` prints the numbers):

- tier 1 ``strict``:    UP if RSI < 30 and MACD > signal and imbalance > 1.1;
                        DOWN if RSI > 70 and MACD < signal and imbalance < 0.9
- tier 2 ``reversion``: UP if RSI < 35; DOWN if RSI > 65
- tier 3 ``lean``:      UP if RSI < 50, else DOWN

A tier's ``confidence`` is its configured value (by default the hit rate measured for it); it is
recorded with the decision and does not change the stake.
"""

from __future__ import annotations

from fsm_bot.config import Config
from fsm_bot.observed import Seen
from fsm_bot.session import Session
from fsm_bot.steps import Predicted, Skip, Snapshot, Step
from states import late_resume

TRIGGERS = {"predicted", "skip"}


def strict(s: Snapshot, cfg: Config) -> Predicted | None:
    values = f"RSI {s.rsi:.2f}, MACD {s.macd:.2f} vs signal {s.macd_signal:.2f}, imbalance {s.imbalance:.3f}"
    if s.rsi < cfg.rsi_oversold and s.macd > s.macd_signal and s.imbalance > cfg.imbalance_up:
        return Predicted(side="UP", confidence=cfg.confidence_strict, tier="strict",
                         rule=f"RSI < {cfg.rsi_oversold:g}, MACD > signal, imbalance > {cfg.imbalance_up:g}: {values}")
    if s.rsi > cfg.rsi_overbought and s.macd < s.macd_signal and s.imbalance < cfg.imbalance_down:
        return Predicted(side="DOWN", confidence=cfg.confidence_strict, tier="strict",
                         rule=f"RSI > {cfg.rsi_overbought:g}, MACD < signal, imbalance < {cfg.imbalance_down:g}: {values}")
    return None


def reversion(s: Snapshot, cfg: Config) -> Predicted | None:
    if s.rsi < cfg.reversion_oversold:
        return Predicted(side="UP", confidence=cfg.confidence_reversion, tier="reversion",
                         rule=f"RSI {s.rsi:.2f} < {cfg.reversion_oversold:g}")
    if s.rsi > cfg.reversion_overbought:
        return Predicted(side="DOWN", confidence=cfg.confidence_reversion, tier="reversion",
                         rule=f"RSI {s.rsi:.2f} > {cfg.reversion_overbought:g}")
    return None


def lean(s: Snapshot, cfg: Config) -> Predicted:
    side = "UP" if s.rsi < cfg.lean_midline else "DOWN"
    sign = "<" if side == "UP" else ">="
    return Predicted(side=side, confidence=cfg.confidence_lean, tier="lean",
                     rule=f"RSI {s.rsi:.2f} {sign} {cfg.lean_midline:g}")


def run(view: Session, now_ms: int, seen: Seen) -> Step:
    assert view.current.snapshot is not None, "PREDICT needs FETCH's snapshot"
    return late_resume(view, now_ms, seen.resumed) or decide(view.current.snapshot, view.cfg)


def decide(snapshot: Snapshot, cfg: Config) -> Step:
    """The policy's decision on one snapshot."""
    signal = strict(snapshot, cfg)
    if signal is not None:
        return signal
    if cfg.policy == "strict":
        return Skip(reason="no_signal", detail=f"strict rule did not fire: RSI {snapshot.rsi:.2f}, MACD "
                    f"{snapshot.macd:.2f} vs {snapshot.macd_signal:.2f}, imbalance {snapshot.imbalance:.3f}")
    return reversion(snapshot, cfg) or lean(snapshot, cfg)
