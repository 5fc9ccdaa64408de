"""papyra's backend conformance suite, run against the SQLite example backend."""

from __future__ import annotations

import pytest

testing = pytest.importorskip("papyra.testing", reason="papyra-core without papyra.testing")
