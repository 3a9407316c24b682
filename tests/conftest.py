import io
import os
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# The commands the tests spawn (hundreds of them) compile fsm_bot once, not each time, and outside the checkout.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
    os.environ["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "fsm-bot-tests-pycache")

from fsm_bot import cli  # noqa: E402
from tests import workers  # noqa: E402

# pytest-xdist (``--dist loadgroup``): a file's tests share a worker, as with ``loadfile``, so that its module
# fixtures (worlds, clusters, browsers) are built once; these files' tests, with cheap fixtures and long tests
# (the real-process crash matrices), are spread one by one so that both workers stay busy to the end.
SPREAD = {"test_crash.py", "test_state_dir.py", "test_order_parsers.py", "test_bad_inputs.py",
          "test_live_lifecycle.py", "test_secrets.py", "test_live.py"}


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: ``tests.workers.from_cores()`` (3 on 2 cores), unless ``PYTEST_XDIST_AUTO_NUM_WORKERS`` says
    otherwise (xdist's own hook reads it)."""
    return None if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") else workers.from_cores()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name not in SPREAD and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(item.path.name))


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
