"""The walk-forward's picture: for each test window, the chosen trial's PnL after fees per session and hit
rate on the train window it was chosen on (in-sample) beside the test window that follows (out-of-sample),
the untuned base config on the same test window, and the break-even hit rate at the entry prices paid."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from fsm_bot.report.chart import tex
from fsm_bot.research.metrics import OBJECTIVES

IN, OUT, BASE, RED = "#5f6368", "#1f5f9f", "#c77c02", "#b3261e"


def title(objective: str, trials: int, train: int, test: int, span: str) -> str:
    after = f"{test} months that follow" if test > 1 else "month that follows"
    return tex(f"walk-forward over {span}: on each {train}-month train window the best of {trials} trials by "
               f"{OBJECTIVES[objective]},\nthen the same config on the {after} (out-of-sample); "
               "bars are 95% Wilson intervals")


def roomy(ax: Any) -> None:
    """Headroom above the data for the legend, so that it covers no point."""
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + (hi - lo) * 0.35)


def walkforward(rows: Sequence[dict[str, Any]], path: Path, *, objective: str, trials: int, train: int, test: int,
                span: str) -> Path:
    """The two panels as a PNG at ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    kinds = {k: sorted((r for r in rows if r["kind"] == k), key=lambda r: r["window"])
             for k in ("train", "test", "baseline")}
    labels = [r["chunk"] for r in kinds["test"]]
    xs = list(range(len(labels)))
    fig, (money, hits) = plt.subplots(2, 1, figsize=(11, 7.4), sharex=True)
    shift = 0.12
    for name, series, colour, dx, marker in (("in-sample (its train window)", kinds["train"], IN, -shift, "s"),
                                             ("out-of-sample (the test window)", kinds["test"], OUT, 0.0, "o"),
                                             ("base config, untuned (the test window)", kinds["baseline"], BASE,
                                              shift, "D")):
        if not series:
            continue
        at = [x + dx for x in xs]
        money.plot(at, [r["pnl_per_session"] for r in series], marker=marker, color=colour, lw=1, label=tex(name))
        rates = [r["hit_rate"] for r in series]
        err = [[(r["hit_rate"] - r["hit_low"]) if r["hit_rate"] is not None else 0 for r in series],
               [(r["hit_high"] - r["hit_rate"]) if r["hit_rate"] is not None else 0 for r in series]]
        hits.errorbar(at, [v if v is not None else float("nan") for v in rates], yerr=err, fmt=marker,
                      color=colour, capsize=2, ms=4, label=tex(name))
    money.axhline(0, color="black", lw=0.8)
    money.set_ylabel(tex("PnL after fees per session ($)"))
    money.yaxis.set_major_formatter(FuncFormatter(lambda v, _: tex(f"{'-' if v < 0 else ''}${abs(v):.2f}")))
    roomy(money)
    money.legend(fontsize=8, loc="upper left", ncol=3)
    money.grid(alpha=0.3)
    for series, colour, style, who in ((kinds["test"], RED, "-", "the chosen trial's"),
                                       (kinds["baseline"], BASE, "--", "the base config's")):
        if series:
            be = [r["breakeven"] if r["breakeven"] is not None else float("nan") for r in series]
            hits.hlines(be, [x - 0.4 for x in xs], [x + 0.4 for x in xs], color=colour, lw=1.2, ls=style,
                        label=f"break-even hit rate at {who} entry prices in the test window")
    hits.axhline(0.5, color="black", lw=0.6, ls=":")
    hits.set_ylabel("hit rate of traded intervals")
    hits.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    roomy(hits)
    hits.legend(fontsize=8, loc="upper left", ncol=2)
    hits.grid(alpha=0.3)
    hits.set_xticks(xs, labels, rotation=60, fontsize=8)
    hits.set_xlim(-0.6, len(xs) - 0.4)
    hits.set_xlabel("test window (UTC months)")
    fig.suptitle(title(objective, trials, train, test, span), fontsize=9.5)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
    return path
