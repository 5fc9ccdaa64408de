"""papyra's Redis Streams backend (``redis://``, ``rediss://``, ``unix://``).

The store is built by :func:`papyra.open_store`; consumer groups for downstream processors
are in :mod:`papyra_backend_redis.groups`.

The names below are imported on first use, so loading the plugin (every ``papyra`` command
does) does not import redis-py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from papyra.lazy import lazy_exports

if TYPE_CHECKING:
    from papyra_backend_redis.groups import ConsumerGroup, Delivery, RecentIds, mark_once
    from papyra_backend_redis.store import RedisStore

_LAZY = {
    "ConsumerGroup": "papyra_backend_redis.groups",
    "Delivery": "papyra_backend_redis.groups",
    "RecentIds": "papyra_backend_redis.groups",
    "mark_once": "papyra_backend_redis.groups",
    "RedisStore": "papyra_backend_redis.store",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = ["ConsumerGroup", "Delivery", "RecentIds", "RedisStore", "mark_once"]
