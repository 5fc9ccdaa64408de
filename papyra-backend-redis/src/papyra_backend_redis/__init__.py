"""papyra's Redis Streams backend (``redis://``, ``rediss://``, ``unix://``).

The store is built by :func:`papyra.open_store`; consumer groups for downstream processors
are in :mod:`papyra_backend_redis.groups`.
"""

from papyra_backend_redis.groups import ConsumerGroup, Delivery, RecentIds, mark_once
from papyra_backend_redis.store import RedisStore

__all__ = ["ConsumerGroup", "Delivery", "RecentIds", "RedisStore", "mark_once"]
