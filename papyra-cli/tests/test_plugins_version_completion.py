from __future__ import annotations

import click
from cli_helpers import Invoke, SharedPlugin, json_out
from click.testing import CliRunner
from papyra import hookimpl
from papyra.plugin_manager import PluginManager
from papyra_cli.main import build_cli


def test_version_lists_papyra_and_plugin_versions(papyra: Invoke) -> None:
    result = papyra("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("papyra ")
    assert "papyra-core" in result.stdout
    assert "shared" in result.stdout
    assert "papyra-cli-tests 1.0" in result.stdout


def test_help_lists_every_command_group(papyra: Invoke) -> None:
    result = papyra("-h")
    assert result.exit_code == 0
    for name in ("persistence", "doctor", "inspect", "plugins", "backends", "completion"):
        assert name in result.stdout
    scan_help = papyra("persistence", "scan", "--help")
    assert "PAPYRA_STORE" in scan_help.stdout
    assert "--json" in scan_help.stdout


def test_plugins_json_has_the_documented_shape(papyra: Invoke) -> None:
    result = papyra("plugins", "--json")
    assert result.exit_code == 0
    data = json_out(result)
    names = {p["name"]: p for p in data}
    assert {"builtin", "shared"} <= set(names)
    for entry in data:
        assert set(entry) >= {"name", "distribution", "version", "hooks", "components",
                              "status", "error"}
    assert "backend:shared" in names["shared"]["components"]
    assert "backend:memory" in names["builtin"]["components"]


def test_backends_json_has_the_documented_shape(papyra: Invoke) -> None:
    data = json_out(papyra("backends", "--json"))
    by_name = {b["name"]: b for b in data}
    assert by_name["memory"] == {"name": "memory", "schemes": ["memory"], "plugin": "builtin",
                                 "description": by_name["memory"]["description"]}
    assert by_name["shared"]["plugin"] == "shared"
    one = json_out(papyra("backends", "MEMORY", "--json"))
    assert [b["name"] for b in one] == ["memory"]
    assert papyra("backends", "nosuch").exit_code == 2


class Exploding:
    @hookimpl
    def papyra_register_backends(self, register: object) -> None:
        raise RuntimeError("kaboom")


def test_a_plugin_failing_at_registration_is_shown_not_fatal() -> None:
    warnings: list[str] = []
    pm = PluginManager(entry_points=False, strict=False, disabled=(), warn=warnings.append)
    pm.register(Exploding(), "exploding", distribution="exploding-dist", version="0.1")
    cli = build_cli(pm)
    result = CliRunner().invoke(cli, ["plugins", "--json"], prog_name="papyra")
    assert result.exit_code == 0, result.output
    broken = next(p for p in json_out(result) if p["name"] == "exploding")
    assert broken["status"] == "failed"
    assert "kaboom" in broken["error"]
    assert CliRunner().invoke(cli, ["backends"], prog_name="papyra").exit_code == 0
    human = CliRunner().invoke(cli, ["plugins"], prog_name="papyra")
    assert "kaboom" in human.stderr


def test_plugin_commands_are_mounted(plugin: SharedPlugin, papyra: Invoke) -> None:
    @click.command("hello")
    def hello() -> None:
        """Say hello."""
        click.echo("hello from a plugin")

    plugin.extra_commands.append(hello)
    result = papyra("hello")
    assert result.exit_code == 0
    assert result.stdout == "hello from a plugin\n"
    assert "hello" in papyra("--help").stdout


def complete(papyra: Invoke, words: str) -> list[str]:
    cword = str(len(words.split()) - (0 if words.endswith(" ") else 1))
    result = papyra(env={"_PAPYRA_COMPLETE": "bash_complete", "COMP_WORDS": words,
                         "COMP_CWORD": cword})
    assert result.exit_code == 0, result.output
    return [line.split(",", 1)[1] for line in result.stdout.splitlines()]


def test_completion_offers_modes_backends_and_schemes(papyra: Invoke) -> None:
    assert complete(papyra, "papyra persistence startup-check --mode f") == ["fail_on_anomaly"]
    assert complete(papyra, "papyra doctor run --mode RE") == ["recover"]
    assert set(complete(papyra, "papyra persistence recover --mode ")) == {
        "ignore", "repair", "quarantine"}
    assert complete(papyra, "papyra backends sh") == ["shared"]
    assert complete(papyra, "papyra persistence scan --store mem") == ["memory://"]
    assert "persistence" in complete(papyra, "papyra pers")


def test_completion_command_prints_the_shell_script(papyra: Invoke) -> None:
    result = papyra("completion", "bash")
    assert result.exit_code == 0
    assert "_PAPYRA_COMPLETE" in result.stdout
    assert papyra("completion", "zsh").exit_code == 0
    assert papyra("completion", "fish").exit_code == 0


def test_a_group_without_a_command_shows_its_help(papyra: Invoke) -> None:
    result = papyra("persistence")
    assert result.exit_code == 2
    assert result.stderr.startswith("Usage: papyra persistence")
    assert "startup-check" in result.stderr
    assert "error" not in result.stderr
