"""A private Dovecot for side-by-side tests (Debian's 2.3.19 is the reference server).

`private_dovecot()` starts one in the foreground with its own config, loopback port, run, state
and mail directories in a temporary directory, and stops that process (only it) at the end.
Every test that compares with Dovecot or imports from it uses this one set-up, so a change in
how Dovecot must be run (users, permissions, umask) is made once.

A Dovecot that cannot run here is a failure, not a skip: scripts/test.sh installs
`dovecot-imapd` and `dovecot-pop3d` and CI runs as root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
# the password every user has (passdb static): the tests log in with it
DEFAULT_PASSWORD = "secret"


def unavailable_reason() -> str | None:
    """Why a private Dovecot cannot run on this machine, or None."""
    if not os.path.exists(DOVECOT):
        return "dovecot is not installed (scripts/test.sh installs dovecot-imapd, dovecot-pop3d)"
    if os.geteuid() != 0:
        return "a private Dovecot needs root to switch to its mail user"
    for user in ("nobody", "dovecot", "dovenull"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"system user {user!r} is missing"
    return None


def require_dovecot() -> None:
    """Fail (never skip) with the reason when Dovecot cannot run here."""
    reason = unavailable_reason()
    assert reason is None, f"the Dovecot reference cannot run: {reason}"


@dataclass(frozen=True)
class Dovecot:
    port: int
    root: Path  # the temporary directory: config, log, run, state and homes

    def home(self, user: str) -> Path:
        return self.root / "home" / user

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _config(root: Path, port: int, protocol: str, password: str, namespace: str) -> str:
    nobody = pwd.getpwnam("nobody")
    listeners = {
        "imap": "service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n"
                "    port = {imap}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n",
        "pop3": "service pop3-login {{\n  inet_listener pop3 {{\n    address = 127.0.0.1\n"
                "    port = {pop3}\n  }}\n  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n",
    }
    services = "".join(
        text.format(**{name: port if name == protocol else 0}) for name, text in listeners.items()
    )
    return f"""base_dir = {root}/run
state_dir = {root}/state
instance_name = mw-test-{os.getpid()}-{port}
log_path = {root}/dovecot.log
protocols = {protocol}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={nobody.pw_uid} gid={nobody.pw_gid} home={root}/home/%n
}}
mail_location = maildir:~/Maildir
first_valid_uid = {nobody.pw_uid}
last_valid_uid = {nobody.pw_uid}
first_valid_gid = 1
namespace inbox {{
  inbox = yes
{namespace}}}
{services}"""


@contextlib.contextmanager
def private_dovecot(
    *,
    protocol: str = "imap",
    password: str = DEFAULT_PASSWORD,
    prepare: Callable[[Path], None] | None = None,
    namespace: str = "",
) -> Iterator[Dovecot]:
    """Run Dovecot serving `protocol` ("imap" or "pop3") on a free loopback port.

    Every user logs in with `password`; user U's home is `<root>/home/U`. `prepare(homes)` may
    fill the homes (e.g. `homes / "bob" / "Maildir"`) before Dovecot starts; they are then
    given to `nobody`, the mail user. `namespace` is extra config inside the INBOX namespace
    (a separator, special-use mailboxes)."""
    require_dovecot()
    nobody = pwd.getpwnam("nobody")
    root = Path(tempfile.mkdtemp(prefix="mw-dovecot-"))
    try:
        root.chmod(0o755)  # Dovecot's unprivileged processes walk into it
        for sub in ("run", "state", "home"):
            (root / sub).mkdir()
        if prepare is not None:
            prepare(root / "home")
        for dirpath, _dirs, files in os.walk(root / "home"):
            os.chown(dirpath, nobody.pw_uid, nobody.pw_gid)
            for name in files:
                os.chown(os.path.join(dirpath, name), nobody.pw_uid, nobody.pw_gid)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        conf = root / "dovecot.conf"
        conf.write_text(_config(root, port, protocol, password, namespace))
        # readable whatever the umask: an earlier in-process CLI call may have left 027
        conf.chmod(0o644)
        proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(conf)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        dovecot = Dovecot(port, root)
        try:
            for _ in range(600):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert proc.poll() is None, "Dovecot did not start: " + dovecot.log()[-800:]
                    time.sleep(0.05)
            else:
                raise AssertionError("Dovecot never listened on its port: " + dovecot.log()[-800:])
            yield dovecot
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    finally:
        shutil.rmtree(root, ignore_errors=True)
