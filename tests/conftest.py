import io
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fsm_bot import cli  # noqa: E402

STRICT_DATA = Path(__file__).resolve().parent / "data" / "btcusdt_1m_2023-08-13_strict.parquet"


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def fsm():
    """Run ``fsm-bot`` in-process: ``fsm("start", "--sim", ...)`` -> Result(code, out, err)."""
    def call(*argv: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = cli.main([str(a) for a in argv])
        return Result(code, out.getvalue(), err.getvalue())
    return call
