"""The five distributions as users get them: built, checked, and installed from wheels alone.

Builds a wheel and an sdist of every distribution (and of the example plugin
``examples/papyra-backend-sqlite``), runs ``twine check`` on them, then installs into a fresh
virtual environment only the wheels of papyra-core, papyra-backend-json and papyra-cli (their
third-party dependencies come from the package index) and asks the installed ``papyra`` which
backends it has. Adding the redis wheel adds ``redis``; adding the example plugin adds ``sqlite``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTIONS = ["papyra-core", "papyra-backend-json", "papyra-backend-rotation",
                 "papyra-backend-redis", "papyra-cli"]
EXAMPLE = ROOT / "examples" / "papyra-backend-sqlite"
CLI_READY = importlib.util.find_spec("papyra_cli.main") is not None


def _pyproject(directory: Path) -> dict[str, object]:
    return tomllib.loads((directory / "pyproject.toml").read_text(encoding="utf-8"))


def _uv() -> str | None:
    local = ROOT / ".tools" / "bin" / "uv"
    return str(local) if local.exists() else shutil.which("uv")


def _run(*cmd: str, timeout: float = 600, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


# --------------------------------------------------------------------------- fast checks


def test_the_five_distributions_share_one_version() -> None:
    versions = {d: _pyproject(ROOT / d)["project"]["version"] for d in DISTRIBUTIONS}  # type: ignore[index]
    assert len(set(versions.values())) == 1, versions


def test_distributions_depend_on_each_other_with_compatible_ranges() -> None:
    version = _pyproject(ROOT / "papyra-core")["project"]["version"]  # type: ignore[index]
    major, minor = (int(x) for x in str(version).split(".")[:2])
    wanted = f">={version},<{major}.{minor + 1}"
    for d in DISTRIBUTIONS:
        deps = _pyproject(ROOT / d)["project"].get("dependencies", [])  # type: ignore[union-attr]
        for dep in deps:
            name = re.split(r"[\s\[<>=!~;]", dep, maxsplit=1)[0]
            if name in DISTRIBUTIONS:
                spec = dep[len(name):].replace(" ", "")
                spec = re.sub(r"^\[[^\]]*\]", "", spec)
                assert spec == wanted, f"{d} depends on {dep!r}; expected {name}{wanted}"


def test_backends_declare_their_plugin_in_the_papyra_entry_point_group() -> None:
    for d, name in [("papyra-backend-json", "json"), ("papyra-backend-rotation", "rotation"),
                    ("papyra-backend-redis", "redis"), ("examples/papyra-backend-sqlite",
                                                        "sqlite")]:
        eps = _pyproject(ROOT / d)["project"]["entry-points"]["papyra"]  # type: ignore[index]
        assert name in eps, d


# --------------------------------------------------------------------------- built artefacts


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    uv = _uv()
    for directory in [*(ROOT / d for d in DISTRIBUTIONS), EXAMPLE]:
        if uv is not None:
            _run(uv, "build", "--quiet", "--out-dir", str(out), str(directory))
        else:
            _run(sys.executable, "-m", "build", "--outdir", str(out), str(directory))
    return out


def _wheel(dist: Path, name: str) -> str:
    found = sorted(dist.glob(f"{name.replace('-', '_')}-*.whl"))
    assert len(found) == 1, f"expected one wheel of {name} in {dist}: {found}"
    return str(found[0])


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the core, json and cli wheels (and their third-party deps)."""
    path = tmp_path_factory.mktemp("venv") / "v"
    uv = _uv()
    if uv is not None:
        _run(uv, "venv", "--quiet", "--python", sys.executable, str(path))
    else:
        _run(sys.executable, "-m", "venv", str(path))
    _install(path, [_wheel(dist, d) for d in ("papyra-core", "papyra-backend-json",
                                              "papyra-cli")])
    return path


def _install(venv: Path, wheels: list[str]) -> None:
    python = str(venv / "bin" / "python")
    uv = _uv()
    if uv is not None:
        _run(uv, "pip", "install", "--quiet", "--python", python, *wheels)
    else:
        _run(python, "-m", "pip", "install", "--quiet", *wheels)


def _papyra(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPYRA_")}
    env.pop("PYTHONPATH", None)
    return _run(str(venv / "bin" / "papyra"), *args, timeout=120, env=env)


def _backends(venv: Path) -> list[str]:
    out = _papyra(venv, "backends", "--json").stdout
    return sorted(b["name"] for b in json.loads(out))


@pytest.mark.slow
def test_every_distribution_builds_a_wheel_and_an_sdist_that_pass_twine_check(
    dist: Path,
) -> None:
    for name in [*DISTRIBUTIONS, "papyra-backend-sqlite"]:
        stem = name.replace("-", "_")
        assert list(dist.glob(f"{stem}-*.whl")), f"no wheel for {name}"
        assert list(dist.glob(f"{stem}-*.tar.gz")), f"no sdist for {name}"
    files = sorted(str(p) for p in dist.iterdir() if p.name.endswith((".whl", ".tar.gz")))
    _run(sys.executable, "-m", "twine", "check", "--strict", *files)


@pytest.mark.slow
def test_wheels_carry_the_typed_marker_and_no_tests(dist: Path) -> None:
    import zipfile

    for wheel in dist.glob("*.whl"):
        names = zipfile.ZipFile(wheel).namelist()
        assert any(n.endswith("/py.typed") for n in names), f"{wheel.name} has no py.typed"
        assert not any("/tests/" in n or n.startswith("tests/") for n in names), wheel.name


@pytest.mark.slow
@pytest.mark.skipif(not CLI_READY, reason="papyra-cli has no commands yet (papyra_cli.main)")
def test_core_json_and_cli_wheels_alone_give_memory_and_json_but_not_redis(venv: Path) -> None:
    names = _backends(venv)
    assert "memory" in names
    assert "json" in names
    assert "redis" not in names
    assert "rotation" not in names


@pytest.mark.slow
@pytest.mark.skipif(not CLI_READY, reason="papyra-cli has no commands yet (papyra_cli.main)")
def test_version_lists_the_installed_distributions(venv: Path) -> None:
    out = _papyra(venv, "--version").stdout
    version = str(_pyproject(ROOT / "papyra-core")["project"]["version"])  # type: ignore[index]
    for name in ("papyra-core", "papyra-backend-json", "papyra-cli"):
        assert name in out
    assert version in out
    assert "papyra-backend-redis" not in out


@pytest.mark.slow
@pytest.mark.skipif(not CLI_READY, reason="papyra-cli has no commands yet (papyra_cli.main)")
def test_adding_the_redis_wheel_adds_the_redis_backend(venv: Path, dist: Path) -> None:
    import zipfile

    wheel = _wheel(dist, "papyra-backend-redis")
    if "papyra_backend_redis/plugin.py" not in zipfile.ZipFile(wheel).namelist():
        pytest.skip("papyra-backend-redis has no plugin module in this checkout yet")
    _install(venv, [wheel])
    assert "redis" in _backends(venv)


@pytest.mark.slow
@pytest.mark.skipif(not CLI_READY, reason="papyra-cli has no commands yet (papyra_cli.main)")
def test_a_third_party_plugin_installed_beside_the_wheels_is_listed(
    venv: Path, dist: Path, tmp_path: Path
) -> None:
    _install(venv, [_wheel(dist, "papyra-backend-sqlite")])
    assert "sqlite" in _backends(venv)
    listing = _papyra(venv, "backends")
    assert "sqlite" in listing.stdout + listing.stderr
    # and it works through the installed command, with nothing but the public API behind it
    python = str(venv / "bin" / "python")
    db = tmp_path / "p.db"
    _run(python, "-c",
         "import asyncio, papyra\n"
         "async def main():\n"
         f"    async with papyra.open_store('sqlite://{db}') as s:\n"
         "        await s.record_event(actor_address='a:1', event_type='ActorStarted')\n"
         "asyncio.run(main())\n")
    scan = json.loads(_papyra(venv, "persistence", "scan", "--store", f"sqlite://{db}",
                              "--json").stdout)
    assert scan["clean"] is True
    assert scan["records"] == 1


def test_ci_workflow_runs_what_scripts_test_runs() -> None:
    """Each distribution's isolated test venv holds the same packages in CI as in scripts/test."""
    yaml = pytest.importorskip("yaml")
    script = (ROOT / "scripts" / "test").read_text(encoding="utf-8")
    local = dict(re.findall(r'\[([\w/-]+)\]="([^"]+)"', script))
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    matrix = {m["package"]: m["deps"] for m in
              workflow["jobs"]["package"]["strategy"]["matrix"]["include"]}
    assert set(DISTRIBUTIONS) <= set(local)
    for package, deps in local.items():
        assert matrix.get(package) == deps, f"{package}: CI installs {matrix.get(package)!r}"
    assert "examples/papyra-backend-sqlite" in matrix
    steps = " ".join(str(s.get("run", "")) for s in workflow["jobs"]["integration"]["steps"])
    assert "pytest -q tests" in steps
    assert "pytest -q tests" in script
