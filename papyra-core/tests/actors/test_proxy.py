"""Actor proxies: method calls and attribute access become messages."""

from __future__ import annotations

import pytest
from actor_helpers import settle
from papyra import Actor, ActorSystem


class Account(Actor):
    def __init__(self) -> None:
        self.balance = 0
        self.owner = Owner()
        self._secret = "pin"

    async def deposit(self, amount: int) -> int:
        self.balance += amount
        return self.balance

    def describe(self, prefix: str = "") -> str:
        return f"{prefix}{self.balance}"


class Owner:
    name = "ada"

    def greet(self) -> str:
        return f"hi {self.name}"


async def test_proxy_calls_sync_and_async_methods_inside_the_actor(system: ActorSystem) -> None:
    proxy = system.spawn(Account).proxy(timeout=1)
    assert await proxy.deposit(10) == 10
    assert await proxy.deposit(amount=5) == 15
    assert await proxy.describe(prefix="=") == "=15"


async def test_proxy_reads_and_writes_attributes_including_nested_ones(
    system: ActorSystem,
) -> None:
    proxy = system.spawn(Account).proxy()
    assert await proxy.balance == 0
    await proxy.balance.set(42)
    assert await proxy.balance.get() == 42
    assert await proxy.owner.name == "ada"
    await proxy.owner.name.set("grace")
    assert await proxy.owner.greet() == "hi grace"


async def test_proxy_defer_tells_without_waiting_for_a_reply(system: ActorSystem) -> None:
    ref = system.spawn(Account)
    await ref.proxy().deposit.defer(7)
    await settle()
    assert await ref.proxy().balance == 7


async def test_proxy_refuses_private_names(system: ActorSystem) -> None:
    proxy = system.spawn(Account).proxy()
    with pytest.raises(AttributeError, match="private"):
        proxy._secret  # noqa: B018
    with pytest.raises(AttributeError, match="private"):
        proxy.owner._hidden  # noqa: B018


async def test_proxy_reraises_a_missing_attribute_from_the_actor(system: ActorSystem) -> None:
    proxy = system.spawn(Account, name="acct").proxy()
    with pytest.raises(AttributeError, match="nope"):
        await proxy.nope()
    assert await proxy.balance == 0
