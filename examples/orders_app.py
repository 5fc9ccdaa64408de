"""A small order-processing actor application whose facts papyra keeps.

    python examples/orders_app.py [--store URL] [--duration SECONDS]

Actors: an order desk (named ``orders``) that checks stock with the ``inventory`` actor and
hands paid orders to a ``payments`` child; the payments actor crashes on a declined card and
is restarted by its supervision policy; a ``shipping`` actor is retired half-way, so the next
shipment becomes a dead letter; an audit closes the run. Everything the system did (lifecycle
events, the dead letter, the audit) ends up in the store, which ``papyra inspect`` can read:

    papyra inspect events --store json://./papyra-demo/papyra.ndjson
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from typing import Any

import papyra
from papyra import Actor, ActorSystem, Strategy, SupervisionPolicy

DEFAULT_STORE = "json://./papyra-demo/papyra.ndjson"


@dataclass(frozen=True)
class PlaceOrder:
    order_id: int
    item: str
    quantity: int
    card: str = "4242"


@dataclass(frozen=True)
class Reserve:
    item: str
    quantity: int


@dataclass(frozen=True)
class Charge:
    order_id: int
    amount: float
    card: str


@dataclass(frozen=True)
class Ship:
    order_id: int


class CardDeclined(Exception):
    pass


class Inventory(Actor):
    async def on_start(self) -> None:
        self.stock = {"tea": 5, "coffee": 3, "cocoa": 1}

    async def receive(self, message: Any) -> Any:
        if isinstance(message, Reserve):
            left = self.stock.get(message.item, 0)
            if left < message.quantity:
                return False
            self.stock[message.item] = left - message.quantity
            return True
        return dict(self.stock)


class Payments(Actor):
    async def on_start(self) -> None:
        self.charged = 0.0

    async def receive(self, message: Any) -> Any:
        if isinstance(message, Charge):
            if message.card == "0000":
                raise CardDeclined(f"card declined for order {message.order_id}")
            self.charged += message.amount
            return round(self.charged, 2)
        return None


class Shipping(Actor):
    async def receive(self, message: Any) -> Any:
        return f"order {message.order_id} shipped" if isinstance(message, Ship) else None


class OrderDesk(Actor):
    PRICES = {"tea": 3.5, "coffee": 4.25, "cocoa": 2.0}

    async def on_start(self) -> None:
        self.payments = self.context.spawn_child(
            Payments, policy=SupervisionPolicy(strategy=Strategy.RESTART, max_restarts=3,
                                               within_seconds=10))

    async def receive(self, message: Any) -> Any:
        if not isinstance(message, PlaceOrder):
            return None
        system = self.context.system
        inventory = system.ref_for("inventory")
        if not await inventory.ask(Reserve(message.item, message.quantity), timeout=1):
            return f"order {message.order_id}: out of {message.item}"
        amount = self.PRICES[message.item] * message.quantity
        try:
            total = await self.payments.ask(Charge(message.order_id, amount, message.card),
                                            timeout=1)
        except CardDeclined as exc:
            return f"order {message.order_id}: {exc} (payments actor restarted)"
        return f"order {message.order_id}: {message.quantity} {message.item} paid, " \
               f"takings {total:.2f}"


ORDERS = [
    PlaceOrder(1, "tea", 2),
    PlaceOrder(2, "coffee", 1),
    PlaceOrder(3, "cocoa", 1, card="0000"),  # declined: Payments crashes and restarts
    PlaceOrder(4, "cocoa", 1),  # the cocoa was reserved by order 3: out of stock
    PlaceOrder(5, "tea", 1),
    PlaceOrder(6, "coffee", 2),
]


async def run(store: str, duration: float) -> int:
    system = ActorSystem(system_id="orders", persistence=store,
                         startup={"mode": "recover", "recovery_mode": "repair"})
    try:
        await system.start()
    except papyra.PapyraError as exc:
        print(f"orders_app: cannot start: {exc}", file=sys.stderr)
        return exc.exit_code
    say = print
    startup = system.startup_result
    if startup is not None:
        say(f"store {system.store.url}: {startup.message}")
    try:
        system.spawn(Inventory, name="inventory")
        desk = system.spawn(OrderDesk, name="orders")
        shipping = system.spawn(Shipping, name="shipping")
        pause = duration / (len(ORDERS) + 2)
        for n, order in enumerate(ORDERS):
            say(await desk.ask(order, timeout=2))
            if n == len(ORDERS) // 2:
                await shipping.stop()
                say("shipping actor retired")
            try:
                say(await shipping.ask(Ship(order.order_id), timeout=1))
            except papyra.ActorStoppedError:
                say(f"order {order.order_id}: nobody ships any more (dead letter recorded)")
                break
            await asyncio.sleep(pause)
        report = system.audit()
        for line in report.summary_lines():
            say(f"audit: {line}")
        for line in system.control_panel():
            say(f"  {line}")
        await asyncio.sleep(pause)
    finally:
        await system.aclose()
    written = system.metrics.snapshot()["records_written"]
    say("persisted: " + ", ".join(f"{n} {kind}" for kind, n in sorted(written.items())))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--store", default=DEFAULT_STORE,
                        help=f"store URL (default {DEFAULT_STORE})")
    parser.add_argument("--duration", type=float, default=2.0,
                        help="roughly how long to run, in seconds (default 2)")
    args = parser.parse_args(argv)
    return asyncio.run(run(args.store, args.duration))


if __name__ == "__main__":
    sys.exit(main())
