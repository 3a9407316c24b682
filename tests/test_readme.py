"""The README's promises: its two commands, CI running the test command verbatim, the config table."""

import re
from pathlib import Path

from fsm_bot.config import describe

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", README)


def test_the_readme_has_two_commands_and_the_first_runs_the_sim():
    run, test = commands()[:2]
    assert run.endswith("fsm-bot start --sim") and "pip install -e ." in run
    assert test.endswith("pytest") and "'.[test]'" in test


def test_ci_runs_the_readmes_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands()[1] in ci.splitlines()
    assert "apt-get update" in ci and "apt-get install" in ci and "set -euo pipefail" in ci


def test_the_config_table_lists_every_setting_with_its_default():
    table = README.split("<!-- config-table -->")[1].split("<!-- /config-table -->")[0]
    rows = [line for line in table.strip().splitlines()[2:]]
    expected = [f"| `{n}` | {d} | {u} | `{e}` | {doc} |" for n, d, u, e, doc in describe()]
    assert rows == expected
