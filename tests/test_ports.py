"""A new venue needs nothing but the ports: a venue written here, from the ``Venue`` protocol alone, runs
whole sessions through the unchanged engine and handlers, and its journal replays."""

import inspect
from decimal import Decimal

from fsm_bot import engine
from fsm_bot.config import Config
from fsm_bot.matching import market_buy
from fsm_bot.ports import Accepted, Book, Clock, Feed, Level, Market, Rejected, SignedOrder, Venue, slug, slug_start_ms
from tests.fakes import START, FakeClock, FakeFeed, new_session, records


class FlatVenue:
    """A venue of its own kind: every market at 49/51 cents, 500 shares deep, filled at once, resolved by a rule."""

    signs_ahead = False

    def __init__(self, official):
        self.official, self.book, self.filled = official, {}, {}

    def market(self, start_ms):
        up = Book(bids=(Level(Decimal("0.49"), Decimal(500)),), asks=(Level(Decimal("0.51"), Decimal(500)),))
        down = Book(bids=(Level(Decimal("0.49"), Decimal(500)),), asks=(Level(Decimal("0.51"), Decimal(500)),))
        return Market(slug=slug(start_ms, 5), condition_id="0xflat", start_ms=start_ms, end_ms=start_ms + 300_000,
                      up_token="u", down_token="d", accepting_orders=True, tick=Decimal("0.01"),
                      min_order_usd=Decimal(1), fee_rate=Decimal("0.05"), up_book=up, down_book=down)

    def warm(self, start_ms, candidates=None):
        pass

    def prepare(self, intent):
        return SignedOrder(key=f"flat-{intent.slug}-{intent.side}", intent=intent)

    def submit(self, order):
        if order.key in self.filled:
            return Rejected(order.key, "duplicate")
        start, _ = slug_start_ms(order.intent.slug)
        asks = self.market(start).book(order.intent.side).asks
        fill = market_buy(asks, order.intent.amount_usd, order.intent.limit_price, Decimal("0.05"))
        self.filled[order.key] = Accepted(order.key, order.key, fill)
        return self.filled[order.key]

    def lookup(self, order):
        return self.filled.get(order.key)

    def trades(self, order, order_id, known):
        return ()

    def position(self, order):
        return None

    def holdings(self, market_slugs):
        return ()

    def resolution(self, market_slug):
        return self.official(market_slug)

    def balance_usd(self, fresh=False):
        return None

    def redeem(self, market_slug):
        return None

    def preflight(self, next_start_ms):
        return []

    def close(self):
        pass


def protocol_methods(protocol) -> set[str]:
    return {n for n, v in vars(protocol).items() if inspect.isfunction(v) and not n.startswith("_")}


def test_the_new_venue_implements_every_method_of_the_port():
    assert protocol_methods(Venue) | set(Venue.__annotations__) <= set(dir(FlatVenue))
    assert protocol_methods(Feed) <= set(dir(FakeFeed)) and protocol_methods(Clock) <= set(dir(FakeClock))


def test_a_venue_built_from_the_ports_alone_runs_sessions_that_replay(tmp_path):
    venue = FlatVenue(official=lambda market_slug: "DOWN")
    session, jr = new_session(tmp_path, Config(intervals=6))
    final = engine.Engine(session, jr, FakeClock(START), FakeFeed(lambda k: "UP"), venue).run()
    jr.close()
    traded = [r for r in final.trades if r.outcome in ("WIN", "LOSS")]
    assert len(final.trades) == 6 and len(traded) == len(venue.filled) > 0
    assert all(r.odds == Decimal("0.5100") for r in traded)  # its own book, its own fee rate
    assert all(r.fee == (r.shares * Decimal("0.05") * Decimal("0.51") * Decimal("0.49")).quantize(Decimal("0.00001"))
               for r in traded)
    assert final.corrections  # its resolutions disagree with the reference candles: corrected from the venue's word
    assert engine.replay_check(records(tmp_path)) == len(records(tmp_path)) - 1
