"""The loopback world of the end-to-end tests (see ``tests/servers/world.py``)."""

from tests.servers.world import START_MS, START_S, World, read_jsonl, world  # noqa: F401
