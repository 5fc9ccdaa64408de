"""papyra.toml and PAPYRA_* precedence (flags > environment > file), and URL redaction."""

from __future__ import annotations

from pathlib import Path

import pytest
from papyra.config import load_config
from papyra.errors import ConfigError
from papyra.retention import RetentionPolicy
from papyra.startup import StartupMode
from papyra.urls import StoreURL, redact, url_for_path

FULL = """
[store]
url = "rotation:///var/lib/app/log"
fsync = "interval"
[retention]
max_records = 10_000_000
max_age_seconds = 604800
max_total_bytes = 10_737_418_240
[startup]
mode = "Recover"
[recovery]
mode = "quarantine"
quarantine_dir = "/var/lib/app/quarantine"
[metrics]
exporters = ["prometheus"]
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_the_documented_file_is_read_completely(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "papyra.toml", FULL), env={})
    assert config.store_url == "rotation:///var/lib/app/log"
    assert dict(config.store_options) == {"fsync": "interval"}
    assert config.retention == RetentionPolicy(max_records=10_000_000, max_age_seconds=604800,
                                               max_total_bytes=10_737_418_240)
    assert config.startup.mode is StartupMode.RECOVER
    assert config.startup.recovery_mode == "quarantine"
    assert config.startup.quarantine_dir == "/var/lib/app/quarantine"
    assert config.metrics_exporters == ("prometheus",)
    assert config.source == str(tmp_path / "papyra.toml")


def test_without_any_file_or_environment_the_defaults_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(env={})
    assert config.store_url is None
    assert config.source is None
    assert config.startup.mode is StartupMode.FAIL_ON_ANOMALY
    assert config.retention.unbounded


def test_papyra_toml_in_the_working_directory_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "papyra.toml", '[store]\nurl = "memory://"\n')
    monkeypatch.chdir(tmp_path)
    assert load_config(env={}).store_url == "memory://"


def test_papyra_config_names_the_file_and_beats_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "papyra.toml", '[store]\nurl = "memory://cwd"\n')
    other = write(tmp_path / "other.toml", '[store]\nurl = "memory://env-file"\n')
    monkeypatch.chdir(tmp_path)
    assert load_config(env={"PAPYRA_CONFIG": str(other)}).store_url == "memory://env-file"


def test_an_explicit_config_file_beats_papyra_config(tmp_path: Path) -> None:
    env_file = write(tmp_path / "env.toml", '[store]\nurl = "memory://env-file"\n')
    flag_file = write(tmp_path / "flag.toml", '[store]\nurl = "memory://flag-file"\n')
    config = load_config(flag_file, env={"PAPYRA_CONFIG": str(env_file)})
    assert config.store_url == "memory://flag-file"


def test_papyra_store_beats_the_file_and_a_flag_beats_both(tmp_path: Path) -> None:
    file = write(tmp_path / "papyra.toml", '[store]\nurl = "memory://file"\n')
    config = load_config(file, env={"PAPYRA_STORE": "memory://env"})
    assert config.store_url == "memory://env"
    assert config.with_store("memory://flag").store_url == "memory://flag"
    assert config.with_store(None).store_url == "memory://env"


def test_relative_paths_in_the_file_are_taken_from_the_files_directory(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    file = write(tmp_path / "etc" / "papyra.toml", '[store]\nurl = "json://data/log.ndjson"\n')
    config = load_config(file, env={})
    assert config.store_url == f"json://{tmp_path / 'etc' / 'data' / 'log.ndjson'}"


@pytest.mark.parametrize(("text", "message"), [
    ("[stor]\nurl = 'memory://'\n", "unknown section"),
    ("[store]\nurl = 5\n", "url must be a string"),
    ("[store]\nfsync = 'sometimes'\n", "fsync must be one of"),
    ("[startup]\nmode = 'maybe'\n", "unknown startup mode"),
    ("[retention]\nmax_records = -1\n", "max_records"),
    ("[metrics]\nexporters = 'prometheus'\n", "exporters must be a list"),
    ("[store\n", "invalid TOML"),
])
def test_a_bad_file_is_a_configuration_error(tmp_path: Path, text: str, message: str) -> None:
    file = write(tmp_path / "papyra.toml", text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(file, env={})
    assert info.value.exit_code == 2


def test_a_named_file_that_does_not_exist_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigError, match="from PAPYRA_CONFIG"):
        load_config(env={"PAPYRA_CONFIG": str(tmp_path / "nope.toml")})


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:s3cret@localhost:6379/0", "redis://:***@localhost:6379/0"),
    ("redis://user:s3cret@host/0?prefix=p", "redis://user:***@host/0?prefix=p"),
    ("rediss://default:pa%40ss@host:6380", "rediss://default:***@host:6380"),
    ("redis://user@host/0", "redis://user@host/0"),
    ("unix:///run/redis.sock?db=0&password=s3cret", "unix:///run/redis.sock?db=0&password=***"),
    ("redis://host/0?token=abc&prefix=p", "redis://host/0?token=***&prefix=p"),
    ("json:///var/lib/app/papyra.ndjson", "json:///var/lib/app/papyra.ndjson"),
])
def test_redact_removes_every_password(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert "s3cret" not in redact(url)


def test_a_parsed_url_never_shows_its_password() -> None:
    url = StoreURL.parse("redis://user:s3cret@localhost:6379/0?prefix=papyra&system_id=orders")
    assert url.scheme == "redis"
    assert url.query == {"prefix": "papyra", "system_id": "orders"}
    assert "s3cret" not in str(url)
    assert "s3cret" not in repr(url)
    assert "s3cret" in url.raw


def test_a_bad_url_error_does_not_leak_the_password() -> None:
    with pytest.raises(ConfigError) as info:
        StoreURL.parse("localhost:s3cret@6379")
    assert "s3cret" not in str(info.value)


def test_file_urls_keep_their_path() -> None:
    assert StoreURL.parse("json:///var/lib/app/papyra.ndjson").file_path() == \
        Path("/var/lib/app/papyra.ndjson")
    assert StoreURL.parse("JSON://relative/log.ndjson").path == "relative/log.ndjson"
    with pytest.raises(ConfigError, match="no path"):
        StoreURL.parse("json://").file_path()


def test_the_path_shorthand_picks_rotation_for_a_directory(tmp_path: Path) -> None:
    assert url_for_path(tmp_path) == f"rotation://{tmp_path}"
    assert url_for_path(tmp_path / "events.ndjson") == f"json://{tmp_path / 'events.ndjson'}"
