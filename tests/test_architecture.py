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
    assert importers and all(p.startswith("fsm_bot/engine/") for p in importers), importers


def adapter_classes() -> set[str]:
    """Classes of fsm_bot/adapters that hold a resource or a clock: what only wiring.py may build."""
    names = set()
    for path in (ROOT / "fsm_bot" / "adapters").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and {f.name for f in node.body if isinstance(f, ast.FunctionDef)} & {
                    "close", "now_ms", "sleep_until"}:
                names.add(node.name)
    return names


def constructions(path: Path, classes: set[str]) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            if name in classes or owner in classes:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {owner + '.' if owner else ''}{name}")
    return found


def test_only_wiring_builds_adapters():
    classes = adapter_classes()
    assert {"SimVenue", "ReplayFeed", "SimClock", "BinanceFeed", "PaperVenue", "PolymarketVenue", "WallClock"} <= classes
    outside = [p for p in (ROOT / "fsm_bot").rglob("*.py")
               if "adapters" not in p.relative_to(ROOT).parts and p.name != "wiring.py"]
    assert [c for p in outside for c in constructions(p, classes)] == []


def test_no_module_is_over_300_lines():
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines())
             for folder in ("fsm_bot", "states") for p in (ROOT / folder).rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > 300} == {}


def test_the_loop_names_no_state():
    from fsm_bot.machine import STATES
    tree = ast.parse((ROOT / "fsm_bot" / "engine" / "loop.py").read_text())
    named = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert named & set(STATES) == set()
    engine = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Engine")
    assert engine.end_lineno - engine.lineno < 100


def test_every_state_has_its_module():
    from fsm_bot.machine import STATES
    assert {p.stem for p in (ROOT / "states").glob("*.py")} - {"__init__"} == {s.lower() for s in STATES}


def test_every_state_but_the_terminal_one_has_a_stage_with_its_handler():
    from fsm_bot.engine.inputs import STAGES
    from fsm_bot.machine import STATES, TERMINAL
    assert set(STAGES) == set(STATES) - TERMINAL
    assert all(stage.handler.__name__ == f"states.{state.lower()}" for state, stage in STAGES.items())
