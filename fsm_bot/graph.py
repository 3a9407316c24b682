"""``fsm-bot graph``: the diagram of the very machine the engine runs, drawn from ``machine.py``'s
table by ``transitions``' GraphMachine: Mermaid and Graphviz source always, SVG and PNG where
Graphviz's ``dot`` is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from fsm_bot.machine import HALTED, INITIAL, STATES, TRANSITIONS, validate

TITLE = "fsm-bot interval machine"
FORMATS = ("mmd", "dot", "svg", "png")
_TERMINAL_STYLE = {"color": "black", "fillcolor": "lightgrey", "peripheries": "2"}


def _source(engine: str) -> str:
    from transitions.extensions import GraphMachine

    class Model:
        pass

    validate(STATES, TRANSITIONS, INITIAL)
    model = Model()
    machine = GraphMachine(model=model, states=STATES, transitions=TRANSITIONS, initial=INITIAL,
                           auto_transitions=False, graph_engine=engine, title=TITLE)
    machine.style_attributes["node"]["terminal"] = _TERMINAL_STYLE
    graph = machine.model_graphs[id(model)]
    graph.reset_styling()  # a diagram of the table, not of one run: no state is "active"
    graph.set_node_style(HALTED, "terminal")
    return graph.get_graph().source


def mermaid() -> str:
    lines = _source("mermaid").splitlines()
    assert lines[:3] == ["---", TITLE, "---"], lines[:3]
    lines[1] = f"title: {TITLE}"  # transitions writes a bare title; Mermaid's front matter wants a key
    return "\n".join(lines + [f"  {HALTED} --> [*]"]) + "\n"


def dot() -> str:
    return _source("graphviz")


def dot_binary() -> str | None:
    return shutil.which("dot")


def export(out_dir: Path, formats: tuple[str, ...] = FORMATS) -> tuple[list[Path], list[str]]:
    """Write the requested formats as ``interval.<format>`` in ``out_dir``; returns (files written, formats
    skipped with the reason)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return write({fmt: out_dir / f"interval.{fmt}" for fmt in formats})


def write(targets: dict[str, Path]) -> tuple[list[Path], list[str]]:
    """Write each format to its path; returns (files written, formats skipped with the reason)."""
    written, skipped = [], []
    dot_source = dot()
    for fmt, path in targets.items():
        if fmt == "mmd":
            path.write_text(mermaid(), encoding="utf-8")
        elif fmt == "dot":
            path.write_text(dot_source, encoding="utf-8")
        elif dot_binary() is None:
            skipped.append(f"{fmt}: Graphviz's `dot` is not installed (Debian/Ubuntu: apt-get install graphviz)")
            continue
        else:
            done = subprocess.run([dot_binary(), f"-T{fmt}", "-o", str(path)], input=dot_source.encode(),
                                  capture_output=True)
            if done.returncode:
                why = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {done.returncode}"]
                skipped.append(f"{fmt}: Graphviz's `dot` failed ({why[0][:200]})")
                continue
        written.append(path)
    return written, skipped
