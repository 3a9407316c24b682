"""Orders signed before their interval: the candidates the size rule names hold the stake the decision then
takes, and a signed order is handed out once, for its own interval only."""

from decimal import Decimal

import pytest

from fsm_bot import journal
from fsm_bot.cli import main
from fsm_bot.adapters.polymarket.presigned import Presigned
from fsm_bot.errors import DataError
from fsm_bot.machine import AWAIT_SETTLE, IDLE
from fsm_bot.ports import Candidates, OrderIntent, SignedOrder
from fsm_bot.session import Session, parse_iso
from states import size


def intent(interval: int, amount: str = "5", side: str = "UP", session: str = "s1") -> OrderIntent:
    return OrderIntent(session=session, interval=interval, slug=f"btc-updown-5m-{interval * 300}", side=side,
                       token_id=f"{side}-{interval}", amount_usd=Decimal(amount), limit_price=Decimal("0.6"))


def signer(calls: list[OrderIntent]):
    def sign(i: OrderIntent) -> SignedOrder:
        calls.append(i)
        return SignedOrder(key=f"0x{len(calls):04x}", intent=i)
    return sign


def test_an_order_signed_in_advance_is_handed_out_once_for_its_own_interval_only():
    calls: list[OrderIntent] = []
    kept = Presigned()
    kept.sign([intent(2), intent(2, side="DOWN"), intent(3), intent(2, "7.50")], signer(calls))
    kept.sign([intent(2)], signer(calls))  # signed already: not again
    assert len(calls) == 4 and len(kept) == 4
    first = kept.take(intent(2, side="DOWN"))
    assert first is not None and first.intent == intent(2, side="DOWN")
    assert len(kept) == 1  # interval 2's other orders are gone with it; interval 3's is kept
    assert kept.take(intent(2)) is None and kept.take(intent(2, side="DOWN")) is None
    assert kept.take(intent(3, "5.01")) is None  # no match: the caller signs; interval 3's is gone too
    assert len(kept) == 0 and (kept.taken, kept.missed) == (1, 3)


def test_an_earlier_intervals_orders_are_forgotten_and_a_failed_signature_is_left_for_the_decision():
    kept = Presigned()

    def sign(i: OrderIntent) -> SignedOrder:
        if i.side == "DOWN":
            raise DataError("no metadata yet", code="bad_payload")
        return SignedOrder(key=i.token_id, intent=i)

    kept.sign([intent(4), intent(4, side="DOWN"), intent(5), intent(5, session="s2")], sign)
    assert len(kept) == 3
    assert kept.take(intent(5)) is not None
    assert len(kept) == 1  # interval 4 (earlier) went with interval 5; another session's order stays
    assert kept.take(intent(4)) is None


def test_candidates_round_trip_to_intents_on_both_tokens():
    c = Candidates(session="s", interval=3, stakes=(Decimal("5.00"), Decimal("7.50")), limit_price=Decimal("0.6"))
    got = c.intents("btc-updown-5m-900", "up-token", "down-token")
    assert [(i.amount_usd, i.side, i.token_id) for i in got] == [
        (Decimal("5.00"), "UP", "up-token"), (Decimal("5.00"), "DOWN", "down-token"),
        (Decimal("7.50"), "UP", "up-token"), (Decimal("7.50"), "DOWN", "down-token")]
    assert {i.interval for i in got} == {3} and {i.slug for i in got} == {"btc-updown-5m-900"}


@pytest.fixture(scope="module")
def sim_journal(tmp_path_factory):
    d = tmp_path_factory.mktemp("presign") / "state"
    assert main(["start", "--sim", "--state-dir", str(d)]) == 0
    return journal.read(d / "journal.jsonl").records


def test_the_stake_each_interval_takes_was_among_the_candidates_named_before_it_began(sim_journal):
    """Before each interval (in IDLE, or while the previous fill awaited its result) the size rule names the
    stakes; the stake SIZE then journals is one of them, for every interval of the default session."""
    s: Session | None = None
    named: dict[int, tuple[Decimal, ...]] = {}
    for r in sim_journal:
        s = Session.begin(r) if r["trigger"] == "begin" else s.apply(r)
        if s.state in (IDLE, AWAIT_SETTLE) and not s.done:
            c = size.candidates(s, parse_iso(r["ts"]))
            if c is not None:
                named[c.interval] = tuple(sorted(set(named.get(c.interval, ())) | set(c.stakes)))
    sized = {r["interval"]: Decimal(r["data"]["stake_usd"]) for r in sim_journal if r["trigger"] == "sized"}
    assert len(sized) == 18
    assert all(stake in named[k] for k, stake in sized.items()), (sized, named)
    assert all(len(v) <= 2 for v in named.values())  # one stake per result of the interval before
