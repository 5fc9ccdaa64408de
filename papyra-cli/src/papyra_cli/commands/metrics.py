"""``papyra metrics``: a store's gauges (``show``) and an HTTP endpoint for them (``serve``).

Both only read the store (``health()``, ``stats()``, ``scan()``): no command here writes a byte.
The counters of a running application (appends, latency, actor messages) live in that process;
export them from the application (``papyra.exporters``, ``papyra.asgi``). What the CLI sees from
outside is the store itself: records by kind, bytes, the age of the oldest and newest record,
the highest seq, whether it is reachable and what its last scan found.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import os
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click
import orjson
from papyra.asgi import read_token_file
from papyra.errors import ConfigError
from papyra.exporters.json import JsonExporter
from papyra.exporters.probe import StoreGauges, StoreProbe, readiness_of
from papyra.exporters.prometheus import render
from papyra.logging_setup import configure_logging
from papyra.store import Store

from papyra_cli import errors
from papyra_cli.context import StoreTarget, debug_option, run_async, store_options
from papyra_cli.output import emit_json, human_bytes, say, table, warn
from papyra_cli.output import show as show_line
from papyra_cli.stopping import stop_on_signals

log = logging.getLogger("papyra.cli")


@click.group()
def metrics() -> None:
    """Show a store's gauges, or serve them (and health checks) over HTTP."""


# --------------------------------------------------------------------------- show


def _age(now: float, ts: float | None) -> float | None:
    return None if ts is None else max(0.0, now - ts)


def gauges_document(g: StoreGauges, *, now: float | None = None) -> dict[str, Any]:
    """The ``metrics show --json`` document."""
    now = time.time() if now is None else now
    stats = g.stats
    return {
        "store": g.store,
        "backend": g.backend,
        "up": g.up,
        "exists": g.exists,
        "error": g.error,
        "records": stats.records if stats else None,
        "records_by_kind": dict(stats.records_by_kind) if stats else None,
        "bytes": stats.bytes if stats else None,
        "first_seq": stats.first_seq if stats else None,
        "last_seq": stats.last_seq if stats else None,
        "oldest_timestamp": stats.oldest_timestamp if stats else None,
        "newest_timestamp": stats.newest_timestamp if stats else None,
        "oldest_record_age_seconds": _age(now, stats.oldest_timestamp) if stats else None,
        "newest_record_age_seconds": _age(now, stats.newest_timestamp) if stats else None,
        "last_scan": g.scan.to_dict() if g.scan is not None else None,
        "metrics": JsonExporter(g).snapshot()["metrics"],
    }


def _human_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.1f}s"


def _render_human(doc: dict[str, Any]) -> None:
    show_line(f"store    {doc['store']} ({doc['backend']})")
    kinds = doc["records_by_kind"] or {}
    rows: list[tuple[str, Any]] = [
        ("records", doc["records"]),
        *((f"  {k}", n) for k, n in sorted(kinds.items())),
        ("bytes", human_bytes(doc["bytes"])),
        ("seq", f"{doc['first_seq']}..{doc['last_seq']}" if doc["last_seq"] else "-"),
        ("oldest record age", _human_age(doc["oldest_record_age_seconds"])),
        ("newest record age", _human_age(doc["newest_record_age_seconds"])),
    ]
    scan = doc["last_scan"]
    if scan is None:
        rows.append(("last scan", "not run (--no-scan)"))
    elif scan["clean"]:
        rows.append(("last scan", "clean"))
    else:
        found = ", ".join(f"{k} x{n}" for k, n in sorted(scan["anomalies"].items()))
        rows.append(("last scan", f"ANOMALIES: {found}"))
    table(("gauge", "value"), rows)


async def _measure(store: Store, *, scan: bool) -> StoreGauges:
    probe = StoreProbe(store, scan=scan, scan_interval=0, tail_recheck_delay=0.2)
    return await probe.measure(force=True)


@metrics.command()
@click.option("json_", "--json", is_flag=True, help="The gauges as one JSON document on stdout.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "prometheus"]),
              default=None, help="text (default, on stderr), json, or prometheus exposition "
                                 "(on stdout).")
@click.option("--scan/--no-scan", default=True, show_default=True,
              help="Scan the store for the last-scan gauges (read-only; costs a full read).")
@store_options
@debug_option
def show(target: StoreTarget, json_: bool, fmt: str | None, scan: bool) -> None:
    """Store-level gauges: records by kind, bytes, oldest/newest record age, last scan result.

    Read-only. Exit 0 (also when the scan found anomalies: that is a gauge here; use
    'papyra persistence scan' to gate on it), 4 when the store is missing or unreachable.
    """
    if json_ and fmt not in (None, "json"):
        raise click.UsageError("--json and --format prometheus/text exclude each other")
    fmt = "json" if json_ else (fmt or "text")
    gauges = target.run(lambda store: _measure(store, scan=scan))
    if not gauges.up:
        raise errors.CommandError(f"{gauges.store}: {gauges.error}", errors.UNAVAILABLE)
    if not gauges.exists:
        raise errors.CommandError(f"{gauges.store}: no log found (nothing has been written "
                                  f"yet?)", errors.UNAVAILABLE)
    if fmt == "prometheus":
        body, _ = render(gauges)
        click.echo(body.decode(), nl=False)
    elif fmt == "json":
        emit_json(gauges_document(gauges))
    else:
        _render_human(gauges_document(gauges))


# --------------------------------------------------------------------------- serve


class MetricsServer(ThreadingHTTPServer):
    """stdlib HTTP server; requests run in threads, store work on the command's event loop."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], *, loop: asyncio.AbstractEventLoop,
                 probe: StoreProbe, token: str | None, timeout: float) -> None:
        self.loop = loop
        self.probe = probe
        self.token = token.encode() if token else None
        self.request_timeout = timeout
        super().__init__(address, MetricsHandler)

    def on_loop(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(self.request_timeout)


class MetricsHandler(BaseHTTPRequestHandler):
    server: MetricsServer
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a client may keep an idle or slow connection (no slowloris)

    def version_string(self) -> str:
        return "papyra"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _reply(self, status: int, body: bytes, content_type: str,
               headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._reply(status, orjson.dumps(payload), "application/json", headers)

    def _authorized(self) -> bool:
        if self.server.token is None:
            return True
        scheme, _, given = (self.headers.get("Authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self.server.token)

    def do_GET(self) -> None:
        if not self._authorized():
            self._json(401, {"error": "missing or wrong bearer token"},
                       {"WWW-Authenticate": 'Bearer realm="papyra"'})
            return
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        try:
            if path == "/metrics":
                gauges = self.server.on_loop(self.server.probe.measure())
                if parse_qs(url.query).get("format", [""])[0] == "json":
                    self._reply(200, JsonExporter(gauges).dumps(), "application/json")
                else:
                    body, content_type = render(gauges, accept=self.headers.get("Accept"))
                    self._reply(200, body, content_type)
            elif path == "/health/live":
                self._json(200, {"status": "alive"})
            elif path == "/health/ready":
                ready = readiness_of(self.server.on_loop(self.server.probe.measure()))
                self._json(ready.status_code, ready.to_dict())
            elif path == "/":
                self._json(200, {"endpoints": ["/metrics", "/health/live", "/health/ready"]})
            else:
                self._json(404, {"error": "not found"})
        except TimeoutError:
            self._json(503, {"status": "not_ready", "ready": False, "reason": "timeout",
                             "detail": "the store did not answer in time"})
        except Exception as exc:  # one bad request must not stop the server
            log.error("request %s failed: %s", path, errors.scrub(str(exc)),
                      exc_info=errors.debug_enabled())
            self._json(500, {"error": "internal error"})

    do_HEAD = do_GET

    def _not_allowed(self) -> None:
        self.close_connection = True  # the request body, if any, is left unread
        self._json(405, {"error": "method not allowed"}, {"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _load_token(token_file: str | None) -> str | None:
    if token_file is None:
        return None
    try:
        token = read_token_file(token_file)
    except ConfigError as exc:
        raise errors.CommandError(str(exc), errors.USAGE) from None
    with contextlib.suppress(OSError):
        if stat.S_IMODE(os.stat(token_file).st_mode) & 0o077:
            warn(f"token file {token_file} is readable by other users (chmod 600 it)")
    return token


async def _serve(store: Store, *, host: str, port: int, token: str | None,
                 scan_interval: float, cache_seconds: float, store_timeout: float) -> None:
    loop = asyncio.get_running_loop()
    probe = StoreProbe(store, scan=scan_interval >= 0, scan_interval=max(scan_interval, 0),
                       cache_seconds=cache_seconds, timeout=store_timeout)
    try:
        server = MetricsServer((host, port), loop=loop, probe=probe, token=token,
                               timeout=store_timeout + 5)
    except OSError as exc:
        raise errors.CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                                  errors.USAGE) from None
    async with stop_on_signals() as stop:
        await _run_server(server, store, probe, stop)


async def _run_server(server: MetricsServer, store: Store, probe: StoreProbe,
                      stop: asyncio.Event) -> None:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="papyra-metrics-http", daemon=True)
    thread.start()
    bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    say(f"papyra: serving {store.url} on http://{shown}:{bound_port} "
        f"(/metrics, /health/live, /health/ready); SIGTERM or Ctrl-C stops")
    log.debug("metrics server listening on %s:%s for %s", bound_host, bound_port, store.url)
    try:
        await stop.wait()
    finally:
        await asyncio.to_thread(server.shutdown)
        server.server_close()
        await asyncio.to_thread(thread.join, 5)
        await probe.aclose()
        await store.aclose()
        say("papyra: metrics server stopped")


@metrics.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Anything but loopback should use --token-file.")
@click.option("--port", default=9464, show_default=True, type=click.IntRange(0, 65535),
              help="Port to bind (0 picks a free one; the address is printed on stderr).")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=str),
              help="Require 'Authorization: Bearer <token>' with the token in this file.")
@click.option("--scan-interval", type=float, default=30.0, show_default=True,
              help="Re-scan the store at most this often (seconds); a negative value never "
                   "scans (readiness then only checks reachability).")
@click.option("--cache-seconds", type=float, default=1.0, show_default=True,
              help="Reuse one measurement for requests this close together.")
@click.option("--timeout", type=float, default=10.0, show_default=True,
              help="Give up on a store that does not answer within this many seconds "
                   "(scans run in the background and are not limited).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Format of log lines on stderr.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"],
                                               case_sensitive=False),
              default="info", show_default=True, help="Least severe log lines shown.")
@store_options
@debug_option
def serve(target: StoreTarget, host: str, port: int, token_file: str | None,
          scan_interval: float, cache_seconds: float, timeout: float, log_format: str,
          log_level: str) -> None:
    """Serve /metrics (Prometheus; ?format=json for JSON), /health/live and /health/ready.

    Ready means: the store is reachable and its last scan found no anomaly (503 with the reason
    as JSON otherwise). A store with no log yet is ready (a first boot). Requests only read the
    store. SIGTERM or Ctrl-C stops the server cleanly (exit 0).
    """
    token = _load_token(token_file)
    store = target.open()
    configure_logging(log_level.upper(), json=log_format == "json")
    if token is None and not _is_loopback(host):
        warn(f"serving on {host} without --token-file: anyone who can reach it can read the "
             f"store's metrics")
    run_async(_serve(store, host=host, port=port, token=token, scan_interval=scan_interval,
                     cache_seconds=cache_seconds, store_timeout=timeout))


__all__ = ["gauges_document", "metrics"]
