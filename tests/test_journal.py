"""The journal (seed LLD 9, test_state.py): the session survives a round trip through it, a torn
last record is cut at any byte, and damage before the last record stops everything."""

import json
from decimal import Decimal

import pytest

from fsm_bot import journal
from fsm_bot.config import Config
from fsm_bot.errors import JournalCorrupt
from fsm_bot.session import fold
from tests.fakes import FakeFeed, FakeVenue, records, run


def write(path, n=4):
    jr = journal.Journal(path)
    for i in range(n):
        jr.append({"trigger": "t", "data": {"i": i}})
    jr.close()
    return path.read_bytes()


def test_save_and_load_state(tmp_path):
    # the seed's state round trip: the session a run ends with is the session its journal folds to
    final = run(tmp_path, FakeFeed(lambda k: "UP" if k % 3 else "DOWN"), FakeVenue())
    assert fold(records(tmp_path)) == final


def test_each_line_is_json_with_a_checksum_and_its_seq(tmp_path):
    lines = write(tmp_path / "j.jsonl").splitlines()
    for i, line in enumerate(lines):
        rec = json.loads(line)
        assert rec["seq"] == i and rec["v"] == journal.SCHEMA and len(rec["crc"]) == 8
        assert journal.encode({k: v for k, v in rec.items() if k != "crc"}) == line + b"\n"


def test_a_torn_last_record_is_cut_at_every_byte(tmp_path):
    # test_atomic_write: no corruption on a simulated crash, wherever the write stopped
    path = tmp_path / "j.jsonl"
    data = write(path)
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    for cut in range(last + 1, len(data)):
        path.write_bytes(data[:cut])
        contents = journal.read(path)
        assert len(contents.records) == 3 and contents.torn and contents.good_bytes == last
        jr, _ = journal.Journal.recover(path)
        assert path.read_bytes() == data[:last] and jr.next_seq == 3
        jr.close()


def test_a_flipped_bit_in_the_last_record_is_a_torn_tail(tmp_path):
    path = tmp_path / "j.jsonl"
    data = bytearray(write(path))
    data[-10] ^= 0x01
    path.write_bytes(bytes(data))
    contents = journal.read(path)
    assert len(contents.records) == 3 and "checksum" in contents.torn


def test_damage_before_the_last_record_stops_everything(tmp_path):
    path = tmp_path / "j.jsonl"
    data = bytearray(write(path))
    data[30] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt, match="record 0 at byte 0"):
        journal.read(path)


def test_a_missing_record_is_damage(tmp_path):
    path = tmp_path / "j.jsonl"
    lines = write(path).splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:1] + lines[2:]))
    with pytest.raises(JournalCorrupt, match="seq 2 where 1"):
        journal.read(path)


def test_log_trade_append(tmp_path):
    # test_log_trade_append: the trade log has one line per interval, in order
    run(tmp_path, FakeFeed(lambda k: "UP"), FakeVenue(), Config(capital_usd=Decimal(1000)))
    recorded = [r for r in records(tmp_path) if r["trigger"] == "recorded"]
    assert [r["data"]["row"]["interval_number"] for r in recorded] == list(range(1, 19))
