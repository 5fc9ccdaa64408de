"""``papyra.testing``: the backend conformance suite and sample records.

A backend (ours or a third party's) runs every contract test of DESIGN §3-§6 with a few lines::

    import pytest
    from papyra.testing import StoreConformance

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def store_factory(self, tmp_path):
            async def factory(**options):
                return MyStore(f"my://{tmp_path}/log", **options)
            return factory

It needs ``pytest`` and ``pytest-asyncio`` (``pip install papyra-core[testing]``).
"""

from __future__ import annotations

import pytest

# Plain ``assert`` statements in the suite report their values, as in a test module.
pytest.register_assert_rewrite("papyra.testing.conformance")

from papyra.testing.conformance import (  # noqa: E402
    AppendReadConformance,
    ConcurrencyConformance,
    Damage,
    DamageConformance,
    DurabilityConformance,
    FailureConformance,
    MaintenanceConformance,
    ModelConformance,
    QueryConformance,
    RetentionConformance,
    Snapshot,
    StoreConformance,
    StoreFactory,
    default_snapshot,
)
from papyra.testing.samples import (  # noqa: E402
    SYSTEM_ID,
    sample_audit,
    sample_dead_letter,
    sample_event,
    sample_records,
)

__all__ = [
    "SYSTEM_ID",
    "AppendReadConformance",
    "ConcurrencyConformance",
    "Damage",
    "DamageConformance",
    "DurabilityConformance",
    "FailureConformance",
    "MaintenanceConformance",
    "ModelConformance",
    "QueryConformance",
    "RetentionConformance",
    "Snapshot",
    "StoreConformance",
    "StoreFactory",
    "default_snapshot",
    "sample_audit",
    "sample_dead_letter",
    "sample_event",
    "sample_records",
]
