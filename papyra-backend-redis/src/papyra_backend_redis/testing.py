"""Throwaway ``redis-server`` processes for tests: one server, a Redis Cluster, TLS, ACL users.

Used by this distribution's tests and the repository's root tests; useful to anyone testing
code that uses the Redis backend. Servers bind 127.0.0.1 on free ports (never 6379), keep
their files in a directory you give, and are stopped by pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import attrs


def redis_server_binary() -> str | None:
    """Path of ``redis-server``, or None when it is not installed."""
    for cand in (shutil.which("redis-server"), "/usr/bin/redis-server", "/usr/sbin/redis-server"):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def require_redis_server() -> str:
    """For pytest: the redis-server binary, else skip the test, or fail it under ``CI=true``."""
    import pytest

    binary = redis_server_binary()
    if binary is None:
        message = "redis-server is not installed (Debian: apt-get install redis-server)"
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return binary


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (not 6379, where a shared server may run)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port != 6379 and port + 10000 < 65536:
            return port


@attrs.define
class TLSFiles:
    ca: Path
    cert: Path
    key: Path


def make_tls_files(directory: Path) -> TLSFiles:
    """A self-signed CA and a server certificate for 127.0.0.1/localhost (made with openssl)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca = directory / "ca.key", directory / "ca.crt"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=papyra-test-ca", "-keyout", str(ca_key), "-out", str(ca))
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key),
        "-out", str(csr))
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return TLSFiles(ca=ca, cert=cert, key=key)


class RedisServer:
    """One ``redis-server`` process on a free loopback port."""

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        aof: bool = False,
        tls: TLSFiles | None = None,
        users: Sequence[tuple[str, str]] = (),
        cluster: bool = False,
        extra: Sequence[str] = (),
        binary: str | None = None,
    ) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.aof = aof
        self.tls = tls
        self.users = tuple(users)
        self.cluster = cluster
        self.extra = tuple(extra)
        self.binary = binary or redis_server_binary() or "redis-server"
        self.proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<RedisServer 127.0.0.1:{self.port}>"

    def command(self) -> list[str]:
        d = self.directory
        args = [self.binary, "--bind", "127.0.0.1", "--dir", str(d), "--daemonize", "no",
                "--save", "", "--appendonly", "yes" if self.aof else "no",
                "--appendfsync", "always", "--dbfilename", f"dump-{self.port}.rdb",
                "--appendfilename", f"appendonly-{self.port}.aof",
                "--logfile", str(d / f"redis-{self.port}.log"), "--protected-mode", "no"]
        if self.tls is not None:
            args += ["--port", "0", "--tls-port", str(self.port),
                     "--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key),
                     "--tls-ca-cert-file", str(self.tls.ca), "--tls-auth-clients", "no"]
        else:
            args += ["--port", str(self.port)]
        if self.cluster:
            args += ["--cluster-enabled", "yes",
                     "--cluster-config-file", str(d / f"nodes-{self.port}.conf"),
                     "--cluster-node-timeout", "2000"]
        for user, password in self.users:
            args += ["--user", user, "on", f">{password}", "~*", "&*", "+@all"]
        if self.users:
            args += ["--user", "default", "off"]
        return args + list(self.extra)

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = self.directory / f"redis-{self.port}.log"
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {tail}")
            if self._answers():
                return self
            time.sleep(0.02)
        self.stop(kill=True)
        raise RuntimeError(f"redis-server on port {self.port} did not start in {timeout}s")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as raw:
                sock: socket.socket = raw
                if self.tls is not None:
                    ctx = ssl.create_default_context(cafile=str(self.tls.ca))
                    sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
                if not self.aof:
                    return bool(reply)
                # with AOF, the server answers LOADING while it replays the file
                return bool(reply) and not reply.startswith(b"-LOADING")
        except OSError:
            return False

    def stop(self, *, kill: bool = False) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def restart(self, *, keep_data: bool = True, kill: bool = False) -> RedisServer:
        """Stop and start again on the same port; ``keep_data=False`` deletes its files first."""
        self.stop(kill=kill)
        if not keep_data:
            for p in self.directory.glob(f"*{self.port}*"):
                if p.is_dir():
                    shutil.rmtree(p)
                elif not p.name.startswith("redis-"):
                    p.unlink()
            for p in self.directory.glob("appendonlydir"):
                shutil.rmtree(p)
        return self.start()

    def url(self, *, db: int = 0, user: str | None = None, password: str | None = None,
            **query: str) -> str:
        scheme = "rediss" if self.tls is not None else "redis"
        auth = ""
        if user is not None or password is not None:
            auth = quote(user or "", safe="") + (
                ":" + quote(password, safe="") if password is not None else "") + "@"
        if self.tls is not None:
            query.setdefault("ssl_ca_certs", str(self.tls.ca))
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        return f"{scheme}://{auth}127.0.0.1:{self.port}/{db}" + (f"?{qs}" if qs else "")


class RedisClusterProcesses:
    """A Redis Cluster of ``masters`` redis-server processes (no replicas) on loopback."""

    def __init__(self, directory: Path, masters: int = 3) -> None:
        self.directory = directory
        self.nodes = [RedisServer(directory / f"node{i}", cluster=True) for i in range(masters)]

    def start(self, timeout: float = 30.0) -> RedisClusterProcesses:
        for node in self.nodes:
            node.start()
        cli = shutil.which("redis-cli") or "redis-cli"
        addrs = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run([cli, "--cluster", "create", *addrs, "--cluster-replicas", "0",
                        "--cluster-yes"], check=True, capture_output=True, timeout=timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = [subprocess.run([cli, "-p", str(n.port), "cluster", "info"],
                                     capture_output=True, text=True).stdout for n in self.nodes]
            if all("cluster_state:ok" in s for s in states):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the Redis Cluster did not become ready")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop(kill=True)

    def url(self, **query: str) -> str:
        node = self.nodes[0]
        qs = "&".join(f"{k}={v}" for k, v in {"cluster": "1", **query}.items())
        return f"redis://127.0.0.1:{node.port}/0?{qs}"
