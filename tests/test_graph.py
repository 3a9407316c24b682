"""``fsm-bot graph`` draws the machine the engine runs, and the committed diagram is that drawing."""

import os
import shutil
from pathlib import Path

import pytest

from fsm_bot import graph
from fsm_bot.machine import STATES, TRANSITIONS

ROOT = Path(__file__).resolve().parent.parent


def test_graph_writes_mermaid_and_dot_naming_every_state_and_trigger(fsm, tmp_path):
    result = fsm("graph", "--out", tmp_path)
    assert result.code == 0
    for fmt in ("mmd", "dot"):
        text = (tmp_path / f"interval.{fmt}").read_text()
        assert all(state in text for state in STATES)
        assert all(f"{r['trigger']}" in text for r in TRANSITIONS)
    mmd = (tmp_path / "interval.mmd").read_text()
    for row in TRANSITIONS:
        assert f"{row['source']} --> {row['dest']}: {row['trigger']}" in mmd or \
            f"{row['source']} --> {row['dest']}: " in mmd and row["trigger"] in mmd


def test_graph_renders_svg_and_png_with_dot(fsm, tmp_path):
    if not shutil.which("dot"):
        assert not os.environ.get("FSM_BOT_REQUIRE_DOT"), "CI installs graphviz: `dot` must be on PATH"
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")
    assert fsm("graph", "--out", tmp_path).code == 0
    svg = (tmp_path / "interval.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and all(state in svg for state in STATES)
    assert (tmp_path / "interval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_committed_diagram_is_the_machine_the_code_runs():
    assert (ROOT / "diagrams" / "interval.mmd").read_text() == graph.mermaid()
    assert (ROOT / "diagrams" / "interval.dot").read_text() == graph.dot()
    svg = (ROOT / "diagrams" / "interval.svg").read_text()
    assert all(f">{state}</text>" in svg for state in STATES)


def test_without_dot_the_sources_are_written_and_the_images_skipped(fsm, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on PATH
    result = fsm("graph", "--out", tmp_path / "g")
    assert result.code == 0 and "dot" in result.err
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["interval.dot", "interval.mmd"]


def test_an_unknown_format_is_refused(fsm, tmp_path):
    result = fsm("graph", "--out", tmp_path, "--format", "svg,gif")
    assert result.code == 2 and "gif" in result.err


def test_out_naming_one_file_writes_that_file_in_the_format_its_name_ends_with(fsm, tmp_path):
    result = fsm("graph", "--out", tmp_path / "sub" / "machine.mmd")
    assert result.code == 0 and (tmp_path / "sub" / "machine.mmd").read_text() == graph.mermaid()
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["machine.mmd"]
    if shutil.which("dot"):
        assert fsm("graph", "--out", tmp_path / "g.svg").code == 0
        assert (tmp_path / "g.svg").is_file() and (tmp_path / "g.svg").read_text().lstrip().startswith("<?xml")
    else:
        assert not os.environ.get("FSM_BOT_REQUIRE_DOT"), "CI installs graphviz: `dot` must be on PATH"


def test_one_file_that_cannot_be_drawn_or_clashes_with_format_is_refused(fsm, tmp_path, monkeypatch):
    clash = fsm("graph", "--out", tmp_path / "g.mmd", "--format", "svg")
    assert clash.code == 2 and "--format" in clash.err and not (tmp_path / "g.mmd").exists()
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on PATH
    undrawn = fsm("graph", "--out", tmp_path / "g.png")
    assert undrawn.code == 6 and "apt-get install graphviz" in undrawn.err and not (tmp_path / "g.png").exists()
