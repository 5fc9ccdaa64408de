"""Every shell command shown in the docs runs, against a real store, with the exit code the page
states.

Commands are the lines starting with ``papyra `` (after optional ``VAR=value`` assignments) of
fenced ``bash`` / ``sh`` / ``shell`` blocks, and the same after the ``$ `` prompt in ``console``
blocks, in ``docs/**/*.md`` and
``README.md``. A line ending in ``\\`` continues on the next line. Each block runs in a fresh
temporary directory, its commands one after the other, with the ``papyra`` of this environment
first on ``PATH`` and no ``PAPYRA_*`` variable inherited.

A page declares what a block needs in an HTML comment right before the block (invisible on the
site)::

    <!-- docs-test: store=torn-json@events.ndjson config=events.ndjson exit=1 -->

``store=KIND@PATH``
    create a store at PATH (relative to the block's directory; repeatable). KIND is one of
    ``json`` (5 valid v1 records), ``torn-json`` (the same plus half a record at the end),
    ``corrupt-json`` (the third line's checksum no longer matches), ``legacy-json`` (lines
    written by papyra 0.3.0) and ``rotation`` (a directory of two segments, 5 records).
``config=PATH``
    write ``./papyra.toml`` naming the store at PATH (with ``[retention] max_records = 4``).
``env-store=PATH``
    set ``PAPYRA_STORE`` to the store at PATH.
``root=/abs/dir``
    the block uses absolute paths under ``/abs/dir``: they are mapped into the block's
    directory (in commands and in ``store=``); repeatable.
``exit=N``
    the exit code every command of the block must have (default 0). A trailing
    ``# exit N`` comment on a command line, or an ``[exit N]`` line in the output shown after
    it (console blocks), overrides it for that command.
``shell``
    run every line of a bash block, not only the ``papyra`` ones (e.g. ``cp`` before a scan).
``redis``
    start a real ``redis-server`` on a free port holding a few records under prefix ``papyra``
    and point ``redis://localhost:6379`` in the commands at it. Skipped when redis-server is
    absent, unless ``CI`` is set (then it fails).
``sqlite``
    make the example plugin ``examples/papyra-backend-sqlite`` visible to ``papyra``.
``background``
    the commands are servers: each must still be running after a few seconds (then it is
    stopped); one that exits early must exit with the stated code.
``free-port``
    append ``--port N`` with a free port to each command (servers shown with their default
    port, which may be taken on a shared machine).
``needs=PROGRAM``
    skip the block when PROGRAM (e.g. ``promtool``) is not installed.
``skip=REASON``
    do not run the block (only for what cannot run unattended, such as a ``<TAB>``
    completion); the reason is reported by pytest.

Store kind ``demo`` runs ``examples/orders_app.py`` (the example actor application) to write
its JSON store at PATH.

A block without a directive runs in an empty directory and must exit 0.

Plain ``papyra ...`` lines run in this process through click's ``CliRunner`` with a fresh CLI
(``papyra_cli.main.build_cli``: new plugin manager, environment and working directory of the
block), because starting an interpreter per command costs seconds on a loaded machine; lines
using the shell (pipes, ``$(...)``, variable assignments), ``shell`` and ``sqlite`` blocks run as
real subprocesses. ``PAPYRA_DOCS_SUBPROCESS=1`` runs every command as a real subprocess.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SHELL_LANGS = {"bash", "sh", "shell"}
DIRECTIVE = re.compile(r"<!--\s*docs-test:(.*?)-->")
FENCE = re.compile(r"^\s*(`{3,})\s*([\w-]*)\s*$")
PAPYRA_LINE = re.compile(r"^(\w+=\S*\s+)*papyra(\s|$)")
EXIT_LINE = re.compile(r"^\[exit (\d+)\]$")
EXIT_COMMENT = re.compile(r"\s+#\s*exit\s+(\d+)\s*$")


@dataclass
class Command:
    text: str
    exit: int
    explicit: bool = False


@dataclass
class Block:
    page: str
    line: int
    lang: str
    options: dict[str, list[str]] = field(default_factory=dict)
    commands: list[Command] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    def opt(self, name: str) -> list[str]:
        return self.options.get(name, [])


def parse_directive(text: str) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for token in shlex.split(text):
        key, _, value = token.partition("=")
        options.setdefault(key, []).append(value)
    return options


def _logical_lines(lines: list[str]) -> Iterator[str]:
    buf = ""
    for raw in lines:
        line = raw.rstrip()
        if line.endswith("\\"):
            buf += line[:-1].strip() + " "
            continue
        yield (buf + line.strip()) if buf else line
        buf = ""
    if buf:
        yield buf.strip()


def commands_of(lang: str, body: list[str], options: dict[str, list[str]]) -> list[Command]:
    default = int(options.get("exit", ["0"])[-1])
    out: list[Command] = []
    run_all = "shell" in options
    for line in _logical_lines(body):
        text = line.strip()
        shown = EXIT_LINE.match(text)
        if lang == "console" and shown and out and not out[-1].explicit:
            out[-1].exit = int(shown.group(1))  # "[exit N]" printed after a command
            out[-1].explicit = True
            continue
        if lang == "console":
            if not text.startswith("$ "):
                continue
            text = text[2:].strip()
        if not (PAPYRA_LINE.match(text) or (run_all and text and not text.startswith("#"))):
            continue
        m = EXIT_COMMENT.search(text)
        code = default
        if m:
            code = int(m.group(1))
            text = text[: m.start()]
        out.append(Command(text=text, exit=code, explicit=m is not None))
    return out


def extract(path: Path, root: Path = ROOT) -> list[Block]:
    """The runnable blocks of one markdown file."""
    page = str(path.relative_to(root))
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    pending: dict[str, list[str]] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        d = DIRECTIVE.search(line)
        if d:
            pending = parse_directive(d.group(1))
            i += 1
            continue
        f = FENCE.match(line)
        if f and f.group(2):
            fence, lang, start = f.group(1), f.group(2), i + 1
            j = start
            while j < len(lines) and lines[j].strip() != fence:
                j += 1
            if lang in SHELL_LANGS or lang == "console":
                options = pending or {}
                cmds = commands_of(lang, lines[start:j], options)
                if cmds:
                    blocks.append(Block(page=page, line=i + 1, lang=lang, options=options,
                                        commands=cmds))
            pending = None
            i = j + 1
            continue
        if line.strip():
            pending = None  # a directive applies only to the block right after it
        i += 1
    return blocks


def all_blocks() -> list[Block]:
    pages = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
    return [b for p in pages if p.exists() for b in extract(p)]


# --------------------------------------------------------------------------- the extractor


def test_extractor_reads_directives_continuations_and_exit_comments(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Intro.\n\n"
        "<!-- docs-test: store=torn-json@a.ndjson exit=1 -->\n"
        "```console\n"
        "$ papyra persistence scan --path a.ndjson\n"
        "{\"clean\": false}\n"
        "$ papyra persistence recover \\\n"
        "    --path a.ndjson   # exit 0\n"
        "```\n\n"
        "```bash\n"
        "cp a b\n"
        "papyra backends   # exit 2\n"
        "```\n\n"
        "```python\npapyra = 1\n```\n",
        encoding="utf-8",
    )
    blocks = extract(page, root=tmp_path)
    assert [(b.line, b.lang) for b in blocks] == [(4, "console"), (11, "bash")]
    assert blocks[0].opt("store") == ["torn-json@a.ndjson"]
    assert [(c.text, c.exit) for c in blocks[0].commands] == [
        ("papyra persistence scan --path a.ndjson", 1),
        ("papyra persistence recover --path a.ndjson", 0),
    ]
    assert [(c.text, c.exit) for c in blocks[1].commands] == [("papyra backends", 2)]


OPERATOR_COMMANDS = [
    # every papyra command line of the operators' documents this project started from
    # (production checklist, CI/CD, backups and recovery), as they wrote them
    "papyra persistence scan",
    "papyra persistence startup-check --mode fail_on_anomaly",
    "papyra persistence compact",
    "papyra persistence startup-check --mode recover --recovery-mode repair",
    "papyra inspect events",
    "papyra doctor run --mode fail_on_anomaly",
    "papyra persistence scan --path tests/fixtures/v1/events.ndjson",
    "papyra persistence startup-check --mode FAIL_ON_ANOMALY --path tests/fixtures/events.ndjson",
    "papyra doctor run --mode FAIL_ON_ANOMALY",
    "papyra doctor run --mode RECOVER --recovery-mode REPAIR",
    "papyra doctor run --mode RECOVER --recovery-mode QUARANTINE "
    "--quarantine-dir /var/lib/papyra/quarantine",
    "papyra persistence scan --path /backup/events.ndjson",
    "papyra persistence startup-check --mode FAIL_ON_ANOMALY",
    "papyra persistence scan --path backups/papyra-2026-01-01/events.ndjson",
    "papyra persistence startup-check",
    "papyra persistence recover --path events.ndjson",
    "papyra persistence recover --mode quarantine --quarantine-dir ./quarantine "
    "--path events.ndjson",
]


def test_docs_run_every_command_of_the_operator_documents() -> None:
    shown = {" ".join(c.text.split()) for b in all_blocks() for c in b.commands}
    missing = [c for c in OPERATOR_COMMANDS if c not in shown]
    assert not missing


# --------------------------------------------------------------------------- fixtures


def _records(n: int = 5) -> list[bytes]:
    from papyra import codec
    from papyra.records import AuditRecord, DeadLetterRecord, EventRecord

    now = time.time() - 60
    recs: list[object] = [
        EventRecord(system_id="docs", actor_address="docs:1", event_type="ActorStarted",
                    timestamp=now),
        EventRecord(system_id="docs", actor_address="docs:2", event_type="ActorStarted",
                    timestamp=now + 1),
        DeadLetterRecord(system_id="docs", target="docs:9", message_type="Ping",
                         payload={"n": 1}, timestamp=now + 2),
        AuditRecord(system_id="docs", total_actors=2, alive_actors=2, stopping_actors=0,
                    restarting_actors=0, registry_size=2, dead_letters_count=1,
                    timestamp=now + 3),
        EventRecord(system_id="docs", actor_address="docs:2", event_type="ActorCrashed",
                    payload={"error": "ValueError: boom"}, timestamp=now + 4),
    ]
    return [codec.encode(r, seq) for seq, r in enumerate(recs[:n], start=1)]  # type: ignore[arg-type]


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_bytes(data)
    path.chmod(0o600)


def make_store(kind: str, path: Path) -> None:
    lines = _records()
    if kind == "json":
        _write(path, b"".join(lines))
    elif kind == "torn-json":
        extra = _records()[0].replace(b'"seq":1,', b'"seq":6,')
        _write(path, b"".join(lines) + extra[: len(extra) // 2])
    elif kind == "corrupt-json":
        bad = lines[2].replace(b"docs:9", b"docs:8")
        _write(path, b"".join([*lines[:2], bad, *lines[3:]]))
    elif kind == "legacy-json":
        legacy = [
            b'{"kind": "event", "system_id": "docs", "actor_address": "docs:1", '
            b'"event_type": "ActorStarted", "payload": {}, "timestamp": 1763771234.5}\n',
            b'{"system_id": "docs", "actor_address": "docs:1", "event_type": "ActorStopped", '
            b'"payload": {}, "timestamp": 1763771240.0, "kind": "event"}\n',
        ]
        _write(path, b"".join(legacy))
    elif kind == "demo":
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(ROOT / "examples" / "orders_app.py"), "--store",
                        f"json://{path.resolve()}", "--duration", "0.2"], check=True,
                       capture_output=True, timeout=120, cwd=path.parent)
    elif kind == "rotation":
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write(path / "segment-00000000000000000001.ndjson", b"".join(lines[:3]))
        _write(path / "segment-00000000000000000004.ndjson", b"".join(lines[3:]))
    else:
        raise AssertionError(f"unknown store fixture {kind!r}")


def _url(path: Path) -> str:
    from papyra.urls import url_for_path

    return url_for_path(path)


def _local(tmp: Path, p: str) -> Path:
    return tmp / p.lstrip("/") if p.startswith("/") else tmp / p


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is required under CI")
        pytest.skip("redis-server not installed")
    port = _free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server did not start")
    # a few records, written through the redis backend itself
    import asyncio

    import papyra

    async def fill() -> None:
        async with papyra.open_store(f"redis://127.0.0.1:{port}/0?prefix=papyra") as store:
            await store.record_event(actor_address="docs:1", event_type="ActorStarted")
            await store.record_event(actor_address="docs:1", event_type="ActorStopped")

    asyncio.run(fill())
    return proc, port


def _sqlite_visible(tmp: Path) -> str:
    """A dist-info on a path entry, so importlib.metadata sees the example's entry point."""
    site = tmp / ".sqlite-plugin"
    info = site / "papyra_backend_sqlite-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: papyra-backend-sqlite\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[papyra]\nsqlite = papyra_backend_sqlite.plugin\n")
    return os.pathsep.join([str(site), str(ROOT / "examples" / "papyra-backend-sqlite" / "src")])


# --------------------------------------------------------------------------- running

SHELL_SYNTAX = re.compile(r"[$|<>;&`]|^\w+=")


def _in_process(block: Block, text: str) -> bool:
    if os.environ.get("PAPYRA_DOCS_SUBPROCESS") or "shell" in block.options:
        return False
    return ("sqlite" not in block.options and text.startswith("papyra ")
            and not SHELL_SYNTAX.search(text))


@contextlib.contextmanager
def _environment(cwd: Path, env: dict[str, str]) -> Iterator[None]:
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def _invoke(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """``papyra ARGV`` in this process, as the console script would run it."""
    from click.testing import CliRunner
    from papyra_cli import errors
    from papyra_cli.main import build_cli

    with _environment(cwd, env):
        runner = CliRunner()
        try:
            cli = build_cli()
        except Exception as exc:  # a broken plugin under PAPYRA_STRICT_PLUGINS=1
            return errors.translate(exc), "", str(exc)
        result = runner.invoke(cli, argv, prog_name="papyra")
    err = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        err += "\nTraceback: " + repr(result.exception)
    return result.exit_code, result.stdout, err


def _serve(text: str, cwd: Path, env: dict[str, str], expected: int) -> tuple[int, str, str]:
    """Start a long-running command; running after a few seconds counts as ``expected``."""
    proc = subprocess.Popen(["bash", "-c", f"exec {text}"], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
        return expected, out, err
    return proc.returncode, out, err


def _backends_needed(block: Block) -> set[str]:
    needed = set()
    text = " ".join(c.text for c in block.commands)
    if "redis" in block.options or "redis://" in text:
        needed.add("redis")
    if any(spec.startswith("rotation@") for spec in block.opt("store")):
        needed.add("rotation")
    return needed


# --------------------------------------------------------------------------- the docs

CLI_READY = importlib.util.find_spec("papyra_cli.main") is not None
BLOCKS = all_blocks()


@pytest.mark.skipif(not CLI_READY, reason="papyra-cli has no commands yet (papyra_cli.main)")
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_docs_command_exits_as_the_page_says(block: Block, tmp_path: Path) -> None:
    for backend in _backends_needed(block):
        if importlib.util.find_spec(f"papyra_backend_{backend}.plugin") is None:
            pytest.skip(f"papyra-backend-{backend} has no plugin module in this checkout yet")
    for reason in block.opt("skip"):
        pytest.skip(reason or "the page marks this block as not runnable")
    for program in block.opt("needs"):
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed")
    tmp = tmp_path / "cwd"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPYRA_")}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", HOME=str(tmp_path),
               NO_COLOR="1", COLUMNS="100")
    for spec in block.opt("store"):
        kind, _, where = spec.partition("@")
        make_store(kind, _local(tmp, where))
    for where in block.opt("config"):
        (tmp / "papyra.toml").write_text(
            f'[store]\nurl = "{_url(_local(tmp, where))}"\n\n[retention]\nmax_records = 4\n')
    for where in block.opt("env-store"):
        env["PAPYRA_STORE"] = _url(_local(tmp, where))
    if "sqlite" in block.options:
        env["PYTHONPATH"] = _sqlite_visible(tmp_path)
    server: subprocess.Popen[bytes] | None = None
    port = 0
    if "redis" in block.options:
        server, port = _start_redis(tmp_path)
    try:
        for cmd in block.commands:
            text = cmd.text
            for root in block.opt("root"):
                text = text.replace(root, str(tmp) + root)
            if server is not None:
                text = re.sub(r"redis://(localhost|127\.0\.0\.1):6379",
                              f"redis://127.0.0.1:{port}", text)
            if "free-port" in block.options:
                text += f" --port {_free_port()}"
            if "background" in block.options:
                code, out, err = _serve(text, tmp, env, cmd.exit)
            elif _in_process(block, text):
                code, out, err = _invoke(shlex.split(text)[1:], tmp, env)
            else:
                proc = subprocess.run(["bash", "-c", text], cwd=tmp, env=env,
                                      capture_output=True, text=True, timeout=120)
                code, out, err = proc.returncode, proc.stdout, proc.stderr
            where = f"{block.id}: `{cmd.text}`"
            assert "Traceback" not in err, f"{where} printed a traceback:\n{err}"
            assert code == cmd.exit, (
                f"{where} exited {code}, the page says {cmd.exit}\n"
                f"stdout:\n{out[-2000:]}\nstderr:\n{err[-2000:]}"
            )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)


def test_the_documentation_site_builds_strict(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-f",
         str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
