"""ACL users, passwords that never show, TLS with a self-signed certificate."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from papyra.errors import StoreUnavailableError
from papyra.plugin_manager import PluginManager
from papyra_backend_redis import ConsumerGroup, RedisStore
from papyra_backend_redis.testing import RedisServer, make_tls_files, require_redis_server

SECRET = "s3cr3t-Pa55word"


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    require_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("acl"), users=[("papyra", SECRET)]).start()
    yield server
    server.stop()


async def test_an_acl_user_and_password_in_the_url_authenticate(acl_server: RedisServer) -> None:
    url = acl_server.url(user="papyra", password=SECRET, system_id="orders")
    async with RedisStore(url) as store:
        await store.record_event(actor_address="a:1", event_type="E")
        assert [r.seq for r in await store.read_all()] == [1]
        assert (await store.health()).ok


async def test_the_password_never_appears_in_repr_url_errors_health_or_metrics(
    acl_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = acl_server.url(user="papyra", password=SECRET + "x", system_id="orders")
    store = PluginManager().open_store(wrong)
    texts = [repr(store), str(store.url), repr(store.settings), str(store.settings)]
    with pytest.raises(StoreUnavailableError) as info:
        await store.record_event(actor_address="a:1", event_type="E")
    texts.append(str(info.value))
    assert "authentication failed" in str(info.value)
    assert info.value.exit_code == 4
    with pytest.raises(StoreUnavailableError) as info2:
        await store.scan()
    texts.append(str(info2.value))
    health = await store.health()
    assert not health.ok
    texts.append(str(health.reason))
    texts.append(repr(ConsumerGroup(store, "g", "c")))
    texts.append(repr(store.metrics.snapshot()))
    texts.append(caplog.text)
    await store.aclose()
    for t in texts:
        assert SECRET not in t, t
    assert "***" in store.url


async def test_an_unreachable_redis_is_a_store_unavailable_error_without_the_password() -> None:
    store = RedisStore(f"redis://u:{SECRET}@127.0.0.1:1/0?socket_connect_timeout=0.2")
    with pytest.raises(StoreUnavailableError) as info:
        await store.stats()
    assert SECRET not in str(info.value)
    assert "unreachable" in str(info.value)
    await store.aclose()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    require_redis_server()
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    files = make_tls_files(Path(d) / "certs")
    server = RedisServer(Path(d) / "data", tls=files).start()
    yield server
    server.stop()


async def test_rediss_urls_talk_tls_with_a_self_signed_ca(tls_server: RedisServer) -> None:
    url = tls_server.url(system_id="orders")
    assert url.startswith("rediss://")
    async with PluginManager().open_store(url) as store:
        stored = await store.record_event(actor_address="a:1", event_type="E")
        assert stored.seq == 1
        assert (await store.scan()).clean


async def test_tls_without_the_ca_is_refused_as_unavailable(tls_server: RedisServer) -> None:
    url = f"rediss://127.0.0.1:{tls_server.port}/0?system_id=orders&socket_connect_timeout=1"
    store = RedisStore(url)
    with pytest.raises(StoreUnavailableError):
        await store.record_event(actor_address="a:1", event_type="E")
    await store.aclose()
