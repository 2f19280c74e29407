"""Postfix and Dovecot from Debian, each run from a scratch directory of its own.

Neither touches the machine-wide configuration: Postfix runs an alternate config directory
(``postfix -c DIR``) with its own queue and data directories, Dovecot runs ``dovecot -c FILE``
with its own base_dir and state_dir. The configuration follows
shared/design/reference-servers.md (Postfix hands mail to Dovecot over LMTP; Dovecot keeps
Maildirs owned by the ``vmail`` user), with ports of our own and no chroot.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

from bench import mailgen
from bench.common import (
    DOMAIN,
    HOST,
    PASSWORD,
    BenchError,
    log,
    pick_port,
    port_open,
    run,
    server_preexec,
    tail,
    terminate,
    wait_for,
)
from bench.targets.base import Population, Target, password_hashes

VMAIL_UID = 5000


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            os.lchown(os.path.join(dirpath, n), uid, gid)


class Dovecot(Target):
    """Dovecot 2.3: IMAP and POP3, plus the LMTP socket that Postfix delivers to."""

    name = "dovecot"
    speaks = frozenset({"imap", "pop3"})

    def __init__(self, scratch: Path) -> None:
        super().__init__()
        self.dir = scratch / "dovecot"
        self.vmail = scratch / "vmail"
        self.lmtp_socket = self.dir / "lmtp.sock"
        self.conf = self.dir / "dovecot.conf"
        self.proc: subprocess.Popen[bytes] | None = None
        self.version = run(["dovecot", "--version"]).stdout.decode().split()[0]
        self.label = f"Dovecot {self.version}"

    def home(self, user: str) -> Path:
        return self.vmail / user

    def setup(self, population: Population) -> None:
        self.dir.mkdir(parents=True)
        (self.dir / "run").mkdir()
        (self.dir / "state").mkdir()
        self.vmail.mkdir(mode=0o750)
        os.chown(self.vmail, VMAIL_UID, VMAIL_UID)
        # The same argon2id hash (same parameters) as Mailwright's accounts, so that a login
        # costs both servers the same work (reference-servers.md uses {PLAIN} for simplicity).
        hashes = password_hashes(population, PASSWORD)
        users = "".join(
            f"{u}:{{ARGON2ID}}{hashes[u]}:{VMAIL_UID}:{VMAIL_UID}::{self.home(u)}::\n"
            for u in population.users
        )
        (self.dir / "users").write_text(users)
        (self.dir / "users").chmod(0o644)
        for user, src in population.maildirs.items():
            dst = self.home(user) / "Maildir"
            dst.parent.mkdir(parents=True, exist_ok=True)
            # Hard links: Maildir files are never rewritten, only renamed or unlinked.
            run(["cp", "-al", str(src), str(dst)])
            _chown_tree(self.home(user), VMAIL_UID, VMAIL_UID)
        self.endpoints = {"imap": (HOST, pick_port()), "pop3": (HOST, pick_port())}
        self.conf.write_text(self._config())
        run(["doveconf", "-c", str(self.conf), "-n"])

    def _config(self) -> str:
        d = self.dir
        imap_port = self.endpoints["imap"][1]
        pop3_port = self.endpoints["pop3"][1]
        return f"""# Written by Mailwright's bench/ (reference server, loopback only).
base_dir = {d}/run
state_dir = {d}/state
instance_name = mwbench-{os.getpid()}
protocols = imap pop3 lmtp
listen = {HOST}
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot-info.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Ln
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
}}
mail_location = maildir:~/Maildir
first_valid_uid = {VMAIL_UID}
last_valid_uid = {VMAIL_UID}
mail_privileged_group = vmail
namespace inbox {{
  inbox = yes
}}
# Room for the 10,000-session IDLE benchmark (one imap process per session).
default_process_limit = 12000
default_client_limit = 30000
protocol imap {{
  mail_max_userip_connections = 20000
}}
protocol pop3 {{
  mail_max_userip_connections = 20000
}}
service imap {{
  process_limit = 12000
}}
service auth {{
  client_limit = 50000
}}
service anvil {{
  client_limit = 50000
}}
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {HOST}
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service lmtp {{
  unix_listener {self.lmtp_socket} {{
    mode = 0666
  }}
}}
"""

    def start(self) -> None:
        log_file = open(self.dir / "stderr.log", "ab")  # noqa: SIM115 - kept for the child
        self.proc = subprocess.Popen(
            ["dovecot", "-F", "-c", str(self.conf)], stdout=log_file, stderr=log_file,
            stdin=subprocess.DEVNULL, preexec_fn=server_preexec,
        )
        log_file.close()
        try:
            wait_for(lambda: all(port_open(p) for _, p in self.endpoints.values())
                     and self.lmtp_socket.exists(), 30, "Dovecot listeners")
        except BenchError:
            raise BenchError("Dovecot did not start:\n" + tail(self.dir / "dovecot.log")
                             + tail(self.dir / "stderr.log")) from None

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
            self.proc = None

    def root_pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None else []

    def count(self, user: str) -> int | None:
        return mailgen.maildir_count(self.home(user) / "Maildir")


class Postfix(Target):
    """Postfix 3.7 accepting for example.test and delivering to Dovecot over LMTP.

    Its 250 after DATA means the queue file is fsync'ed; delivery into the mailbox follows
    asynchronously, which the SMTP workloads measure separately ("in mailbox").
    """

    name = "postfix"
    speaks = frozenset({"smtp"})

    def __init__(self, scratch: Path, dovecot: Dovecot) -> None:
        super().__init__()
        self.dir = scratch / "postfix"
        self.conf = self.dir / "conf"
        self.dovecot = dovecot
        self.running = False
        self.version = run(["postconf", "-d", "-h", "mail_version"]).stdout.decode().strip()
        self.label = f"Postfix {self.version} + Dovecot {dovecot.version} (LMTP)"

    def _postfix(self, *args: str, timeout: float = 120) -> None:
        # "postfix" logs its own errors only to syslog or a terminal: show the log on failure.
        cp = run(["postfix", "-c", str(self.conf), *args], check=False, timeout=timeout)
        if cp.returncode != 0:
            raise BenchError(f"postfix {' '.join(args)} failed:\n" + tail(self.dir / "postfix.log"))

    def setup(self, population: Population) -> None:
        d = self.dir
        for sub in ("conf", "queue", "data"):
            (d / sub).mkdir(parents=True)
        shutil.chown(d / "data", "postfix", "postfix")
        port = pick_port()
        self.endpoints = {"smtp": (HOST, port)}
        (self.conf / "vmailbox").write_text(
            "".join(f"{u}@{DOMAIN} OK\n" for u in population.users))
        (self.conf / "main.cf").write_text(f"""# Written by Mailwright's bench/ (reference server, loopback only).
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.{DOMAIN}
mydomain = {DOMAIN}
mydestination =
inet_interfaces = {HOST}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_maps = texthash:{self.conf}/vmailbox
virtual_transport = lmtp:unix:{self.dovecot.lmtp_socket}
alias_maps =
alias_database =
smtpd_relay_restrictions = permit_mynetworks reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks reject_unauth_destination
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
default_process_limit = 200
lmtp_destination_concurrency_limit = 20
lmtp_destination_recipient_limit = 100
biff = no
maillog_file = {d}/postfix.log
maillog_file_prefixes = /var, /dev/stdout, {d}
""")
        # Debian's master.cf without chroot (our paths live outside the spool) and with our port.
        (self.conf / "master.cf").write_text(f"""{HOST}:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
lmtp      unix  - - n - - lmtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
""")
        self._postfix("check")

    def start(self) -> None:
        self._postfix("start")
        self.running = True
        wait_for(lambda: port_open(self.endpoints["smtp"][1]), 30, "Postfix smtpd")

    def stop(self) -> None:
        if self.running:
            with contextlib.suppress(BenchError):
                self._postfix("stop")
            self.running = False

    def _master_pid(self) -> int | None:
        try:
            return int((self.dir / "queue" / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def root_pids(self) -> list[int]:
        pid = self._master_pid()
        return ([pid] if pid else []) + self.dovecot.root_pids()

    def count(self, user: str) -> int | None:
        return self.dovecot.count(user)


def ensure_vmail() -> None:
    """The Maildir owner of reference-servers.md (uid/gid 5000), created once if missing."""
    if run(["getent", "group", "vmail"], check=False).returncode != 0:
        run(["groupadd", "-g", str(VMAIL_UID), "vmail"])
        log("created group vmail (gid 5000) for Dovecot's Maildirs")
    if run(["getent", "passwd", "vmail"], check=False).returncode != 0:
        run(["useradd", "-u", str(VMAIL_UID), "-g", str(VMAIL_UID), "-d", "/nonexistent",
             "-s", "/usr/sbin/nologin", "-M", "vmail"])
        log("created user vmail (uid 5000) for Dovecot's Maildirs")
