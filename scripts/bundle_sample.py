"""Writes ``fsm_bot/data/btcusdt_1m_sample.npz``: the bundled sample's columns as ``load_candles`` reads them
from ``btcusdt_1m_sample.parquet``, with that file's sha256, so that a replay of the sample needs no polars
(``fsm_bot.adapters.sim.replay``). Run it after changing the parquet; ``tests/test_candles.py`` checks the
two agree."""

from __future__ import annotations

import numpy as np

from fsm_bot.candles import BUNDLED, BUNDLED_COLUMNS, Columns, digest, load_candles
from fsm_bot.ports import CANDLE_COLUMNS


def main() -> None:
    columns = Columns.of(load_candles(BUNDLED))
    np.savez_compressed(BUNDLED_COLUMNS, parquet_sha256=np.array(digest(BUNDLED)),
                        **{name: getattr(columns, name) for name in CANDLE_COLUMNS})
    print(f"{BUNDLED_COLUMNS}: {len(columns)} candles of {BUNDLED.name} ({BUNDLED_COLUMNS.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
