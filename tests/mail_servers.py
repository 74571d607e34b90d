"""Real mail servers for tests: Debian's Dovecot (IMAP, a throwaway configuration and users) and aiosmtpd
(SMTP, with AUTH, keeping every message it accepts)."""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from email.message import EmailMessage

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
    """IMAP on 127.0.0.1 without TLS; users `USERS`, password `PASSWORD`; INBOX and Sent (\\Sent)."""

    def __init__(self) -> None:
        if shutil.which("dovecot") is None:
            raise RuntimeError("dovecot is needed for the mail tests: apt-get install dovecot-imapd (make test does)")
        user = pwd.getpwnam("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.getuid())
        self.dir, self.port = tempfile.mkdtemp(prefix="dovecot-"), free_port()
        shutil.chown(self.dir, user.pw_uid, user.pw_gid)
        with open(f"{self.dir}/users", "w") as f:
            f.write("".join(f"{name}:{PASSWORD}\n" for name in USERS))
        with open(f"{self.dir}/dovecot.conf", "w") as f:
            f.write(DOVECOT_CONF.format(d=self.dir, port=self.port, u=user, group=grp.getgrgid(user.pw_gid).gr_name))
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
    first DATA is answered 451 before it is accepted."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
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

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=free_port(), authenticator=authenticate,
                                     auth_require_tls=False)
        self.controller.start()
        self.port = self.controller.port

    def smtp(self, user: str | None) -> dict:
        return {"host": "127.0.0.1", "port": self.port, "starttls": False, "ssl": False, "username": user,
                "password": PASSWORD if user else None}

    def stop(self) -> None:
        self.controller.stop()
