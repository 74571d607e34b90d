"""Real HTTP through a running `crm serve`, and the schema check that guards its start."""

from __future__ import annotations

import re
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.factories import PASSWORD, unique_email
from tests.servers import crm_command, crm_env, free_port, wait_http

SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


def fresh_database_name() -> str:
    return f"fresh_{uuid.uuid4().hex[:12]}"


@contextmanager
def running(args: list[str], env: dict[str, str], workdir: Path) -> Iterator[subprocess.Popen]:
    """Start `crm <args>` with output in files (never a pipe that could fill up); kill it if a test fails."""
    with open(workdir / "stdout.log", "wb") as out, open(workdir / "stderr.log", "wb") as err:
        proc = subprocess.Popen(crm_command() + args, env=env, cwd=workdir, stdout=out, stderr=err)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def output(workdir: Path) -> str:
    return (workdir / "stdout.log").read_text(errors="replace") + (workdir / "stderr.log").read_text(errors="replace")


def serve_args(port: int) -> list[str]:
    return ["serve", "--port", str(port)]


def test_serve_real_http_signup_token_me_and_clean_sigterm(database_url, redis_server, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = crm_env(database_url, redis_server.url, tmp_path)
    with running(serve_args(port), env, tmp_path) as proc:
        wait_http(f"{base}/healthz", proc)
        with httpx.Client(base_url=base, timeout=10) as http:
            ready = http.get("/readyz").json()
            assert (ready["status"], ready["checks"]["database"], ready["checks"]["redis"]) == ("ok", "ok", "ok")

            email = unique_email("served")
            r = http.post("/v1/auth/signup",
                          json={"org_name": "Served Inc", "email": email, "password": PASSWORD, "name": "Sam"})
            assert r.status_code == 201, r.text
            assert SANE_REQUEST_ID.match(r.headers["x-request-id"])

            r = http.post("/v1/auth/token", data={"username": email, "password": PASSWORD})
            assert r.status_code == 200, r.text
            token = r.json()["access_token"]

            r = http.get("/v1/me", headers={"Authorization": f"Bearer {token}", "X-Request-ID": "served-me-1"})
            assert r.status_code == 200, r.text
            assert r.json()["user"]["email"] == email
            assert r.headers["x-request-id"] == "served-me-1"

            r = http.get("/v1/me", headers={"Authorization": "Bearer nonsense"})
            assert r.status_code == 401
            assert r.headers["content-type"].startswith("application/problem+json")
            assert SANE_REQUEST_ID.match(r.headers["x-request-id"])

        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"crm serve did not stop within 60 s of SIGTERM\n{output(tmp_path)}") from None
        assert code == 0, f"crm serve exited with {code} after SIGTERM\n{output(tmp_path)}"


def test_serve_refuses_an_unmigrated_database(pg, redis_server, tmp_path):
    url = pg.create_database(fresh_database_name())
    port = free_port()
    env = crm_env(url, redis_server.url, tmp_path)
    with running(serve_args(port), env, tmp_path) as proc:
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"crm serve kept running on an empty database\n{output(tmp_path)}") from None
    assert code != 0
    assert "crm migrate" in output(tmp_path)
    # It never answered: nothing is listening on the port.
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    except httpx.TransportError:
        pass
    else:
        raise AssertionError("something answers on the port of a server that refused to start")


def test_migrate_then_serve_on_a_fresh_database(pg, redis_server, tmp_path):
    url = pg.create_database(fresh_database_name())
    env = crm_env(url, redis_server.url, tmp_path)
    migrated = subprocess.run(crm_command() + ["migrate"], env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(serve_args(port), env, tmp_path) as proc:
        wait_http(f"{base}/healthz", proc)
        with httpx.Client(base_url=base, timeout=10) as http:
            r = http.get("/readyz")
            assert r.status_code == 200, r.text
            email = unique_email("migrated")
            r = http.post("/v1/auth/signup",
                          json={"org_name": "Fresh Co", "email": email, "password": PASSWORD, "name": "Fay"})
            assert r.status_code == 201, r.text
            r = http.get("/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
            assert r.status_code == 200, r.text
            assert r.json()["user"]["email"] == email

    # Migrating again is a no-op that succeeds.
    again = subprocess.run(crm_command() + ["migrate"], env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr


def _submit_three(base: str, forwarded_for: list[str]) -> list[int]:
    """Sign up, make a form, post it three times with these X-Forwarded-For values: the status codes."""
    with httpx.Client(base_url=base, timeout=30) as http:
        r = http.post("/v1/auth/signup", json={"org_name": "Proxied", "email": unique_email("proxied"),
                                               "password": PASSWORD, "name": "Pia"})
        assert r.status_code == 201, r.text
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        form = http.post("/v1/forms", headers=headers, json={"name": "Contact us"}).json()
        url = f"/v1/public/forms/{form['public_key']}/submissions"
        return [http.post(url, json={"email": f"p{i}@example.com"}, headers={"X-Forwarded-For": xff}).status_code
                for i, xff in enumerate(forwarded_for)]


def test_serve_believes_x_forwarded_for_only_from_trusted_proxies(database_url, redis_server, tmp_path):
    """The rate limit counts per client address: X-Forwarded-For counts only when the peer is one of
    CRM_TRUSTED_PROXIES (here 127.0.0.1, the test itself); without it, every post is the peer's."""
    limits = {"CRM_FORM_RATE_LIMIT": "2", "CRM_FORM_RATE_WINDOW_SECONDS": "86400"}
    for trusted, codes in (("", [202, 202, 429]), ("127.0.0.1", [202, 202, 202])):
        port = free_port()
        env = crm_env(database_url, redis_server.url, tmp_path, CRM_TRUSTED_PROXIES=trusted, **limits)
        with running(serve_args(port), env, tmp_path) as proc:
            wait_http(f"http://127.0.0.1:{port}/healthz", proc)
            got = _submit_three(f"http://127.0.0.1:{port}", [f"198.51.100.{i}" for i in (1, 2, 3)])
            assert got == codes, (trusted, got, output(tmp_path))
