"""papyra's logging: one ``papyra`` hierarchy, an optional JSON formatter, no secrets."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest
from papyra.logging_setup import configure_logging, get_logger, redact_text


@pytest.fixture
def restore_papyra_logger() -> Iterator[None]:
    logger = logging.getLogger("papyra")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_redaction_removes_url_passwords_query_secrets_and_bearer_tokens() -> None:
    text = ("redis://app:hunter2@db:6379/0?prefix=p&password=hunter3 failed; "
            "Authorization: Bearer abc.def-123; token=xyz")
    clean = redact_text(text)
    for secret in ("hunter2", "hunter3", "abc.def-123", "xyz"):
        assert secret not in clean
    assert "redis://app:***@db:6379/0" in clean
    assert "prefix=p" in clean


def test_redaction_leaves_ordinary_messages_alone() -> None:
    text = "compacted json:///var/lib/app/papyra.ndjson: removed 3 records, token file ok"
    assert redact_text(text) == text


@pytest.mark.usefixtures("restore_papyra_logger")
def test_json_lines_carry_level_logger_message_and_extra_fields_without_secrets() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", json=True, stream=stream)
    log = get_logger("store")
    log.warning("cannot reach %s", "redis://u:topsecret@h:6379/0", extra={"backend": "redis"})
    try:
        raise OSError("connect to redis://u:topsecret@h failed")
    except OSError:
        log.exception("append failed")
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["level"] == "WARNING"
    assert lines[0]["logger"] == "papyra.store"
    assert lines[0]["message"] == "cannot reach redis://u:***@h:6379/0"
    assert lines[0]["backend"] == "redis"
    assert lines[1]["exc_type"] == "OSError"
    assert "topsecret" not in stream.getvalue()


@pytest.mark.usefixtures("restore_papyra_logger")
def test_text_lines_are_redacted_too_and_configuring_twice_never_doubles_lines() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    configure_logging("INFO", stream=stream)
    get_logger("papyra.cli").info("using redis://:pw123@localhost/0")
    get_logger("metrics").debug("not shown at INFO")
    out = stream.getvalue()
    assert out.count("using redis") == 1
    assert "pw123" not in out
    assert "not shown" not in out
    assert " INFO papyra.cli: " in out


def test_loggers_form_one_hierarchy_under_papyra() -> None:
    assert get_logger().name == "papyra"
    assert get_logger("asgi").parent is logging.getLogger("papyra")
