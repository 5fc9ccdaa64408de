"""``papyra redis groups|pending|claim`` (added by the redis plugin through
``papyra_register_commands``) against a real redis-server, through click's CliRunner."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from papyra import EventRecord
from papyra.errors import StoreUnavailableError
from papyra.plugin_manager import PluginManager
from papyra_backend_redis import ConsumerGroup, RedisStore
from papyra_backend_redis.testing import RedisServer, require_redis_server

SECRET = "cli-Pa55-secret"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    require_redis_server()
    s = RedisServer(Path(tmp_path_factory.mktemp("redis-cli")),
                    users=[("papyra", SECRET)]).start()
    yield s
    s.stop()


@pytest.fixture
def url(server: RedisServer) -> str:
    return server.url(user="papyra", password=SECRET, prefix=f"cli{uuid.uuid4().hex[:8]}",
                      system_id="orders")


@pytest.fixture
def cli() -> click.Group:
    """A bare root group with the plugins' commands, as papyra-cli builds it."""
    pm = PluginManager()

    @click.group()
    def root() -> None:
        """papyra"""

    root.plugin_manager = pm  # type: ignore[attr-defined]
    pm.register_commands(root)
    return root


def seed(url: str) -> None:
    async def main() -> None:
        async with RedisStore(url) as store:
            await store.append([EventRecord(system_id="orders", actor_address=f"a:{i}",
                                            event_type="E") for i in range(5)])
            group = ConsumerGroup(store, "indexer", "worker-1", block_ms=0)
            await group.ensure()
            got = await group.fetch()
            await group.ack(got[:2])

    asyncio.run(main())


def test_the_redis_plugin_adds_a_redis_command_group(cli: click.Group) -> None:
    result = CliRunner().invoke(cli, ["redis", "--help"])
    assert result.exit_code == 0
    for name in ("groups", "pending", "claim"):
        assert name in result.stdout


def test_groups_lists_groups_consumers_and_pending_counts(cli: click.Group, url: str) -> None:
    seed(url)
    result = CliRunner().invoke(cli, ["redis", "groups", "--store", url, "--json"])
    assert result.exit_code == 0, result.output
    (group,) = json.loads(result.stdout)
    assert group["group"] == "indexer"
    assert group["pending"] == 3
    assert group["consumers"][0]["name"] == "worker-1"
    human = CliRunner().invoke(cli, ["redis", "groups", "--store", url])
    assert "indexer" in human.stdout
    assert SECRET not in human.output + result.output


def test_pending_lists_unacknowledged_entries(cli: click.Group, url: str) -> None:
    seed(url)
    result = CliRunner().invoke(cli, ["redis", "pending", "indexer", "--store", url, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 3
    assert {r["consumer"] for r in rows} == {"worker-1"}
    assert all(r["deliveries"] == 1 for r in rows)


def test_claim_moves_idle_entries_to_another_consumer(cli: click.Group, url: str) -> None:
    seed(url)
    result = CliRunner().invoke(cli, ["redis", "claim", "indexer", "--consumer", "worker-2",
                                      "--min-idle", "0ms", "--store", url, "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 3
    after = CliRunner().invoke(cli, ["redis", "pending", "indexer", "--store", url, "--json"])
    assert {r["consumer"] for r in json.loads(after.stdout)} == {"worker-2"}


def test_the_store_url_can_come_from_papyra_store(cli: click.Group, url: str) -> None:
    seed(url)
    result = CliRunner(env={"PAPYRA_STORE": url}).invoke(cli, ["redis", "groups", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["group"] == "indexer"


@pytest.mark.parametrize("args", [
    ["groups"], ["pending", "indexer"], ["claim", "indexer", "--consumer", "x"],
])
def test_a_wrong_password_fails_as_unavailable_and_is_never_shown(
    cli: click.Group, server: RedisServer, args: list[str]
) -> None:
    bad = server.url(user="papyra", password=SECRET + "-wrong", system_id="orders")
    result = CliRunner().invoke(cli, ["redis", *args, "--store", bad])
    assert isinstance(result.exception, StoreUnavailableError)
    assert result.exception.exit_code == 4
    assert "authentication failed" in str(result.exception)
    assert SECRET not in str(result.exception)
    assert SECRET not in result.output


def test_an_unreachable_redis_fails_as_unavailable(cli: click.Group) -> None:
    url = f"redis://papyra:{SECRET}@127.0.0.1:1/0?socket_connect_timeout=0.2"
    result = CliRunner().invoke(cli, ["redis", "groups", "--store", url])
    assert isinstance(result.exception, StoreUnavailableError)
    assert SECRET not in str(result.exception) + result.output


def test_a_store_that_is_not_redis_is_a_usage_error(cli: click.Group, tmp_path: Path) -> None:
    from papyra.errors import ConfigError

    result = CliRunner().invoke(cli, ["redis", "groups", "--store", "memory://"])
    assert isinstance(result.exception, ConfigError)
    assert result.exception.exit_code == 2
