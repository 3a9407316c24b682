"""Handlers are pure: ``states/`` and ``machine.py`` import no adapter, no network, no clock, no
randomness, no OS; only the engine imports ``states/``."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"requests", "websocket", "time", "random", "os", "socket", "fsm_bot.adapters", "fsm_bot.wiring",
             "fsm_bot.engine", "fsm_bot.journal", "fsm_bot.runner", "subprocess", "threading"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def clock_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in ("now", "utcnow", "today", "time", "monotonic"):
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
    return found


def pure_modules() -> list[Path]:
    return sorted((ROOT / "states").glob("*.py")) + [ROOT / "fsm_bot" / "machine.py"]


def test_handlers_and_the_table_import_nothing_with_effects():
    bad = {p.name: sorted(n for n in imports(p) if any(n == f or n.startswith(f + ".") for f in FORBIDDEN))
           for p in pure_modules()}
    assert {k: v for k, v in bad.items() if v} == {}


def test_handlers_never_read_the_clock():
    assert [c for p in pure_modules() for c in clock_calls(p)] == []


def test_only_the_engine_imports_states():
    importers = [p.relative_to(ROOT).as_posix() for p in (ROOT / "fsm_bot").rglob("*.py")
                 if any(n == "states" or n.startswith("states.") for n in imports(p))]
    assert importers == ["fsm_bot/engine.py"]


def test_every_state_has_its_module():
    from fsm_bot.machine import STATES
    assert {p.stem for p in (ROOT / "states").glob("*.py")} - {"__init__"} == {s.lower() for s in STATES}
