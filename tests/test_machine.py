"""The machine's table: validated when built, restored without callbacks, journaled before it moves."""

import pytest

from fsm_bot import machine
from fsm_bot.engine.inputs import HANDLER_TRIGGERS
from fsm_bot.machine import STATES, TRANSITIONS, Bot, DefinitionError, build, edges, validate


def test_the_machine_has_the_ten_states_of_the_design():
    assert STATES == ["IDLE", "FETCH", "PREDICT", "RISK", "SIZE", "SUBMIT", "AWAIT_SETTLE", "RECORD", "SKIPPED",
                      "HALTED"]


def test_one_interval_runs_the_happy_path():
    path, state = [], "IDLE"
    for trigger in ["tick", "fetched", "predicted", "approved", "sized", "submitted", "settled", "recorded"]:
        state = edges()[state][trigger]
        path.append(state)
    assert path == ["FETCH", "PREDICT", "RISK", "SIZE", "SUBMIT", "AWAIT_SETTLE", "RECORD", "IDLE"]


def test_every_handler_trigger_has_a_row():
    validate(STATES, TRANSITIONS, "IDLE", HANDLER_TRIGGERS)
    assert edges()["HALTED"] == {}


def test_build_refuses_two_initial_states():
    with pytest.raises(DefinitionError, match="exactly one initial"):
        validate(STATES, TRANSITIONS, ["IDLE", "FETCH"])


def test_build_refuses_an_unreachable_state():
    rows = [r for r in TRANSITIONS if r["dest"] != "SKIPPED"]
    with pytest.raises(DefinitionError, match=r"unreachable from IDLE: \['SKIPPED'\]"):
        validate(STATES, rows, "IDLE")


def test_build_refuses_a_state_without_halt():
    rows = [r for r in TRANSITIONS if not (r["trigger"] == "halt" and r["source"] == "RISK")]
    with pytest.raises(DefinitionError, match=r"without a 'halt' transition: \['RISK'\]"):
        validate(STATES, rows, "IDLE")


def test_build_refuses_a_handler_trigger_without_a_row():
    with pytest.raises(DefinitionError, match=r"PREDICT.settled"):
        validate(STATES, TRANSITIONS, "IDLE", {"PREDICT": {"predicted", "settled"}})


def test_restoring_a_state_fires_no_callback():
    calls = []
    bot = Bot(lambda *a: calls.append(a))
    build(bot, "SUBMIT")
    assert bot.state == "SUBMIT" and calls == []


def test_a_failed_journal_append_leaves_the_state_unchanged():
    def refuse(*args):
        raise OSError("disk full")
    bot = Bot(refuse)
    build(bot)
    with pytest.raises(OSError):
        bot.trigger("tick", step=None)
    assert bot.state == "IDLE"


def test_halted_is_terminal():
    bot = Bot(lambda *a: None)
    build(bot, "HALTED")
    with pytest.raises(machine.MachineError if hasattr(machine, "MachineError") else Exception):
        bot.trigger("halt", step=None)
