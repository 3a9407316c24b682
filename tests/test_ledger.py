"""The simulated venues' order ledger: every line checksummed like the journal's; whatever bytes a line
holds, reading it gives an order or "damaged", never an exception; a damaged line before the last stops."""

import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fsm_bot import journal
from fsm_bot.adapters.ledger import OrderLedger, _entry
from fsm_bot.errors import JournalCorrupt

GOOD = {"key": "0xab", "slug": "btc-updown-5m-1710338400", "side": "UP", "token_id": "1", "amount_usd": "5.00",
        "limit_price": "0.60", "order_type": "FOK", "ts_ms": 1710338400000,
        "fill": {"shares": "9.2592", "spent_usd": "5.00", "avg_price": "0.5400", "fee_usd": "0.16560"}}
values = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=True), st.text(max_size=8),
                   st.sampled_from(["NaN", "1e999", "-1", "٣", "8.3166E-26", ""]))


@settings(deadline=None, max_examples=10_000)
@given(st.binary(max_size=300))
@example(journal.encode(GOOD))
def test_any_bytes_are_an_order_or_damage(line):
    entry = _entry(line)
    assert entry is None or isinstance(entry, dict) and isinstance(entry["key"], str)


@settings(deadline=None, max_examples=10_000)
@given(st.sampled_from(sorted(GOOD) + ["fill.shares", "fill.spent_usd", "fill.avg_price"]), values)
def test_a_checksummed_line_with_a_bad_field_is_damage_not_a_crash(field, value):
    entry = json.loads(json.dumps(GOOD))
    if field.startswith("fill."):
        entry["fill"][field[5:]] = value
    else:
        entry[field] = value
    got = _entry(journal.encode(entry))  # the checksum holds: only the content can be wrong
    if got is not None:
        assert got["side"] in ("UP", "DOWN") and isinstance(got["ts_ms"], int)


def test_damage_before_the_last_line_stops_and_a_torn_last_line_is_dropped(tmp_path):
    path = tmp_path / "venue-orders.jsonl"
    lines = [journal.encode({**GOOD, "key": f"0x{n}"}) for n in range(3)]
    path.write_bytes(lines[0] + lines[1][:-5] + b"\n" + lines[2])
    with pytest.raises(JournalCorrupt, match="line 2"):
        OrderLedger(path)
    path.write_bytes(lines[0] + lines[1] + lines[2][:20])
    ledger = OrderLedger(path)
    assert sorted(ledger.orders) == ["0x0", "0x1"] and path.read_bytes() == lines[0] + lines[1]
    ledger.close()
