"""Real mail servers for tests: Debian's Dovecot (IMAP, a throwaway configuration and users), aiosmtpd (SMTP,
with AUTH, keeping every message it accepts) and an OAuth2 provider's token and introspection endpoints, which
both servers consult for XOAUTH2."""

from __future__ import annotations

import base64
import grp
import imaplib
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.servers import free_port

PASSWORD = "secret"
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar",
         "peggy", "trent")

DOVECOT_CONF = """protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = no
default_login_user = {u.pw_name}
default_internal_user = {u.pw_name}
default_internal_group = {group}
first_valid_uid = {u.pw_uid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid={u.pw_uid} gid={u.pw_gid} home={d}/mail/%u
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {port}
  }}
}}
"""

# XOAUTH2 (and OAUTHBEARER) logins: Dovecot's oauth2 passdb asks the token server whether a bearer token is
# active and whose it is (RFC 7662 introspection); passwords still go to the passwd-file passdb.
DOVECOT_OAUTH2_CONF = """auth_mechanisms = plain login xoauth2 oauthbearer
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {d}/oauth2.conf
}}
"""
DOVECOT_OAUTH2_ARGS = """introspection_mode = post
introspection_url = {url}
username_attribute = username
active_attribute = active
active_value = true
"""


def _wait_port(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited: {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"127.0.0.1:{port} did not open")


class Dovecot:
    """IMAP on 127.0.0.1 without TLS; users `USERS`, password `PASSWORD`; INBOX and Sent (\\Sent). With `tokens`,
    also XOAUTH2 with the access tokens that token server issued."""

    def __init__(self, tokens: TokenServer | None = None) -> None:
        if shutil.which("dovecot") is None:
            raise RuntimeError("dovecot is needed for the mail tests: apt-get install dovecot-imapd (make test does)")
        user = pwd.getpwnam("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.getuid())
        self.dir, self.port = tempfile.mkdtemp(prefix="dovecot-"), free_port()
        shutil.chown(self.dir, user.pw_uid, user.pw_gid)
        with open(f"{self.dir}/users", "w") as f:
            f.write("".join(f"{name}:{PASSWORD}\n" for name in USERS))
        with open(f"{self.dir}/dovecot.conf", "w") as f:
            f.write(DOVECOT_CONF.format(d=self.dir, port=self.port, u=user, group=grp.getgrgid(user.pw_gid).gr_name))
            if tokens is not None:
                f.write(DOVECOT_OAUTH2_CONF.format(d=self.dir))
        if tokens is not None:
            with open(f"{self.dir}/oauth2.conf", "w") as f:
                f.write(DOVECOT_OAUTH2_ARGS.format(url=f"{tokens.url}/introspect"))
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", f"{self.dir}/dovecot.conf"])
        _wait_port(self.port, self.proc)

    def imap(self, user: str, ssl: bool = False) -> dict:
        return {"host": "127.0.0.1", "port": self.port, "ssl": ssl, "username": user, "password": PASSWORD}

    def append(self, user: str, message: EmailMessage | bytes, folder: str = "INBOX") -> None:
        raw = message if isinstance(message, bytes) else message.as_bytes()
        with imaplib.IMAP4("127.0.0.1", self.port) as c:
            c.login(user, PASSWORD)
            status, _ = c.append(folder, "", imaplib.Time2Internaldate(time.time()), raw)
            assert status == "OK"

    def recreate(self, user: str, folder: str) -> list[bytes]:
        """Delete `folder` and make it again with the same messages: a new UIDVALIDITY, as a server restore
        would give. -> the messages."""
        with imaplib.IMAP4("127.0.0.1", self.port) as c:
            c.login(user, PASSWORD)
            c.select(folder)
            _, data = c.uid("fetch", "1:*", "(BODY.PEEK[])")
            raws = [part[1] for part in data if isinstance(part, tuple)]
            c.close()
            assert c.delete(folder)[0] == "OK"
            assert c.create(folder)[0] == "OK"
            for raw in raws:
                c.append(folder, "", imaplib.Time2Internaldate(time.time()), raw)
        return raws

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class SmtpSink:
    """aiosmtpd on 127.0.0.1 with AUTH (any user of `USERS`, password `PASSWORD`), keeping each message.
    `refuse`: recipient -> the reply to RCPT TO (e.g. "550 no such user"), `defer_first`: how many times the
    first DATA is answered 451 before it is accepted. With `tokens`, also XOAUTH2 with that server's access
    tokens (`oauth_logins`: who logged in so)."""

    def __init__(self, tokens: TokenServer | None = None) -> None:
        self.messages: list[EmailMessage] = []
        self.oauth_logins: list[str] = []
        self.refuse: dict[str, str] = {}
        self.defer: int = 0
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001, ANN201
                if address.lower() in sink.refuse:
                    return sink.refuse[address.lower()]
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201
                with sink.lock:
                    if sink.defer > 0:
                        sink.defer -= 1
                        return "451 4.3.0 try again later"
                from email import message_from_bytes, policy

                message = message_from_bytes(envelope.content, policy=policy.default)
                message["X-Rcpt-To"] = ", ".join(envelope.rcpt_tos)
                with sink.lock:
                    sink.messages.append(message)
                return "250 Message accepted"

        def authenticate(server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN202
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() in USERS and \
                auth_data.password.decode() == PASSWORD
            return AuthResult(success=ok)

        class OAuthHandler(Handler):
            async def auth_XOAUTH2(self, server, args):  # noqa: ANN001, ANN201, N802 - aiosmtpd's hook name
                """As Gmail answers: a refused token gets a JSON error as a 334 challenge, then 535."""
                raw = base64.b64decode(args[1]) if len(args) > 1 else await server.challenge_auth("")
                fields = dict(p.split("=", 1) for p in raw.decode().split("\x01") if "=" in p)
                user, token = fields.get("user"), fields.get("auth", "").removeprefix("Bearer ")
                found = tokens.introspect(token)
                if found["active"] and found["username"] == user:
                    with sink.lock:
                        sink.oauth_logins.append(user)
                    return AuthResult(success=True, auth_data=user)
                await server.challenge_auth(json.dumps({"status": "401", "schemes": "Bearer"}))
                return AuthResult(success=False, handled=False, message="535 5.7.8 Username and Password not accepted")

        self.controller = Controller(OAuthHandler() if tokens is not None else Handler(), hostname="127.0.0.1",
                                     port=free_port(), authenticator=authenticate, auth_require_tls=False)
        self.controller.start()
        self.port = self.controller.port

    def smtp(self, user: str | None) -> dict:
        return {"host": "127.0.0.1", "port": self.port, "starttls": False, "ssl": False, "username": user,
                "password": PASSWORD if user else None}

    def stop(self) -> None:
        self.controller.stop()


@dataclass
class Grant:
    """A user's consent to a client, which its refresh token stands for."""

    user: str
    client_id: str
    client_secret: str
    refresh_token: str
    rotate: bool = False  # as Microsoft: each refresh answers a new refresh token (the old one stays usable)
    expires_in: int = 600  # of the access tokens it is refreshed into
    fail_with: int | None = None  # answer its refreshes with this status (a provider outage)
    revoked: bool = False
    refreshes: int = 0


class TokenServer:
    """An OAuth2 provider on 127.0.0.1 (plain HTTP). `POST /token` is its token endpoint for the refresh_token
    grant (as Google's and Microsoft's): access tokens lasting the grant's `expires_in` seconds, `invalid_grant`
    for a revoked grant, `invalid_client` for a wrong client secret. `POST /introspect` (RFC 7662) says whether
    an access token is active and whose it is: what Dovecot asks. The state is per grant, so tests sharing the
    server do not meet."""

    def __init__(self) -> None:
        self.grants: dict[str, Grant] = {}  # every refresh token handed out -> its grant
        self.access: dict[str, tuple[Grant, float]] = {}  # access token -> (grant, expiry on time.monotonic())
        self.requests: list[dict[str, str]] = []  # the forms posted to /token
        self.lock = threading.Lock()
        tokens = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                if self.path == "/token":
                    status, answer = tokens._token(form)
                elif self.path == "/introspect":
                    status, answer = 200, tokens.introspect(form.get("token", ""))
                else:
                    status, answer = 404, {"error": "not_found"}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def grant(self, user: str, rotate: bool = False, expires_in: int = 600, fail_with: int | None = None) -> Grant:
        """A new consent of `user` to a new client."""
        grant = Grant(user, f"client-{os.urandom(4).hex()}", f"client-secret-{os.urandom(8).hex()}",
                      f"refresh-{os.urandom(16).hex()}", rotate, expires_in, fail_with)
        with self.lock:
            self.grants[grant.refresh_token] = grant
        return grant

    def revoke(self, grant: Grant) -> None:
        """The user withdrew consent: the refresh token and every access token of the grant stop working."""
        with self.lock:
            grant.revoked = True

    def _token(self, form: dict[str, str]) -> tuple[int, dict]:
        with self.lock:
            self.requests.append(form)
            if form.get("grant_type") != "refresh_token":
                return 400, {"error": "unsupported_grant_type"}
            grant = self.grants.get(form.get("refresh_token", ""))
            if grant is not None and grant.fail_with is not None:
                return grant.fail_with, {"error": "temporarily_unavailable"}
            if grant is None or grant.revoked:
                return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
            if (form.get("client_id"), form.get("client_secret")) != (grant.client_id, grant.client_secret):
                return 401, {"error": "invalid_client", "error_description": "Unauthorized"}
            grant.refreshes += 1
            access = f"access-{os.urandom(16).hex()}"
            self.access[access] = (grant, time.monotonic() + grant.expires_in)
            answer = {"access_token": access, "expires_in": grant.expires_in, "token_type": "Bearer"}
            if grant.rotate:
                grant.refresh_token = f"refresh-{os.urandom(16).hex()}"
                self.grants[grant.refresh_token] = grant
                answer["refresh_token"] = grant.refresh_token
            return 200, answer

    def introspect(self, token: str) -> dict:
        with self.lock:
            grant, expiry = self.access.get(token, (None, 0.0))
            if grant is None or grant.revoked or expiry < time.monotonic():
                return {"active": False}
            return {"active": True, "username": grant.user, "client_id": grant.client_id}

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
