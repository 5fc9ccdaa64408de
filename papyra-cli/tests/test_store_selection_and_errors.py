from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import Invoke, SharedStore, json_out, mixed_log, one_error_line


def test_without_any_store_the_command_says_how_to_name_one(papyra: Invoke) -> None:
    result = papyra("persistence", "scan")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "--path" in line
    assert "PAPYRA_STORE" in line


def test_papyra_store_names_the_store(papyra: Invoke, shared: SharedStore) -> None:
    mixed_log(shared)
    result = papyra("persistence", "scan", "--json", env={"PAPYRA_STORE": "shared://"})
    assert result.exit_code == 0
    assert json_out(result)["records"] == 10


def test_flags_win_over_the_environment(papyra: Invoke, shared: SharedStore) -> None:
    result = papyra("persistence", "scan", "--store", "shared://", "--json",
                    env={"PAPYRA_STORE": "nosuch://x"})
    assert result.exit_code == 0
    result = papyra("persistence", "scan", "--path", "missing.ndjson",
                    env={"PAPYRA_STORE": "shared://"})
    assert "'json'" in one_error_line(result)  # --path won: a json store, not shared://


def test_the_environment_wins_over_the_config_file(papyra: Invoke, shared: SharedStore,
                                                   tmp_path: Path) -> None:
    (tmp_path / "papyra.toml").write_text('[store]\nurl = "nosuch:///x"\n')
    result = papyra("persistence", "scan", "--json", env={"PAPYRA_STORE": "shared://"})
    assert result.exit_code == 0, result.stderr
    result = papyra("persistence", "scan")
    assert result.exit_code == 2
    assert "no backend for URL scheme 'nosuch'" in one_error_line(result)


def test_the_config_file_comes_from_config_or_papyra_config(papyra: Invoke, shared: SharedStore,
                                                            tmp_path: Path) -> None:
    conf = tmp_path / "etc" / "papyra.toml"
    conf.parent.mkdir()
    conf.write_text('[store]\nurl = "shared://"\nfsync = "never"\n')
    assert papyra("persistence", "scan", "--config", str(conf)).exit_code == 0
    assert shared.opened_with == {"fsync": "never"}
    assert papyra("persistence", "scan", env={"PAPYRA_CONFIG": str(conf)}).exit_code == 0


def test_a_missing_or_broken_config_file_is_a_configuration_error(papyra: Invoke,
                                                                  tmp_path: Path) -> None:
    result = papyra("persistence", "scan", "--config", "nope.toml")
    assert result.exit_code == 2
    assert "config file not found" in one_error_line(result)
    (tmp_path / "papyra.toml").write_text("[store\nurl=")
    result = papyra("persistence", "scan")
    assert result.exit_code == 2
    assert "invalid TOML" in one_error_line(result)


def test_path_and_store_together_are_a_usage_error(papyra: Invoke) -> None:
    result = papyra("persistence", "scan", "--path", "a.ndjson", "--store", "shared://")
    assert result.exit_code == 2
    assert "only one" in one_error_line(result)


def test_an_unknown_option_is_one_line_and_exit_2(papyra: Invoke) -> None:
    result = papyra("persistence", "scan", "--frobnicate")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "--frobnicate" in line
    assert "papyra persistence scan --help" in line


def test_a_url_password_is_never_printed(papyra: Invoke, shared: SharedStore) -> None:
    url = "redis://ops:s3cret-pw@db.internal:6379/0?password=s3cret-pw"
    result = papyra("persistence", "scan", "--store", url)
    assert result.exit_code == 2
    assert "s3cret-pw" not in result.stderr + result.stdout
    shared.explode = RuntimeError(f"cannot reach {url}")
    for debug in ([], ["--debug"]):
        result = papyra("persistence", "scan", "--store", "shared://", *debug)
        assert result.exit_code == 5
        assert "s3cret-pw" not in result.stderr + result.stdout
        assert "redis://ops:***@db.internal" in result.stderr


def test_an_internal_error_exits_5_with_one_line_and_a_traceback_only_on_debug(
        papyra: Invoke, shared: SharedStore) -> None:
    shared.explode = ZeroDivisionError("oops")
    result = papyra("persistence", "scan", "--store", "shared://")
    assert result.exit_code == 5
    assert "internal error: ZeroDivisionError: oops" in one_error_line(result)
    debug = papyra("persistence", "scan", "--store", "shared://", "--debug")
    assert debug.exit_code == 5
    assert "Traceback" in debug.stderr
    assert "Traceback" in papyra("--debug", "persistence", "scan", "--store",
                                 "shared://").stderr
    assert "Traceback" in papyra("persistence", "scan", "--store", "shared://",
                                 env={"PAPYRA_DEBUG": "1"}).stderr


@pytest.mark.parametrize(("exc", "code"), [
    (PermissionError(13, "Permission denied", "/var/lib/papyra/x.ndjson"), 4),
    (OSError(5, "Input/output error"), 4),
])
def test_permission_and_io_errors_mean_store_unavailable(papyra: Invoke, shared: SharedStore,
                                                         exc: OSError, code: int) -> None:
    shared.explode = exc
    result = papyra("persistence", "scan", "--store", "shared://")
    assert result.exit_code == code
    assert exc.strerror in one_error_line(result)


def test_the_config_files_system_id_and_retention_reach_the_backend(
        papyra: Invoke, shared: SharedStore, tmp_path: Path) -> None:
    (tmp_path / "papyra.toml").write_text(
        '[store]\nurl = "shared://"\n[retention]\nmax_records = 5\n'
        '[system]\nsystem_id = "orders"\n')
    assert papyra("persistence", "scan").exit_code == 0
    assert shared.opened_with["system_id"] == "orders"
    assert shared.opened_with["retention"].max_records == 5
    assert papyra("persistence", "scan", "--store", "shared://?system_id=billing").exit_code == 0
    assert "system_id" not in shared.opened_with  # the URL's own system_id wins
