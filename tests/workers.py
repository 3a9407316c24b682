"""How many pytest-xdist workers ``-n auto`` starts: ``tests/conftest.py``'s hook decides it, ``bench/suite.py``
reports it."""

import os


def from_cores() -> int:
    """Half as many workers again as the cores this process may use (3 on 2 cores). A third of the suite's worker
    time is spent waiting (sessions on a test clock, servers answering, killed processes reaped), so a worker more
    than the cores keeps both busy: 5 min 8 s with 2 workers, 4 min 19 s with 3, on 2 quiet cores."""
    return max(1, len(os.sched_getaffinity(0)) * 3 // 2)


def auto() -> int:
    """What ``-n auto`` starts: ``PYTEST_XDIST_AUTO_NUM_WORKERS`` when it is set (xdist's own hook reads it),
    else ``from_cores()``."""
    given = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS")
    return int(given) if given else from_cores()
