#!/usr/bin/env python3
"""The whole journey: Jim at sendermail.test writes to Jane at recipientmail.test.

Two hosts, each in its own network namespace with an address of its own, joined by a bridge:

    10.77.N.1  mail.sendermail.test     mailwright serve (submission 587, MX 25, ...)
    10.77.N.2  mail.recipientmail.test  mailwright serve (MX 25, IMAP 143, POP3 110, ...)
    10.77.N.254 (the host)              a DNS server with both zones (MX and A records)

Jim submits with smtplib on 587 (STARTTLS, AUTH). His server looks up recipientmail.test's MX in
DNS and relays to it on the real port 25. Jane reads the message with IMAP (STARTTLS) and POP3
(STLS). Needs root (ip netns, veth, bridge).

    sudo python examples/outbound_journey.py          # run the story, print each step
    sudo python examples/outbound_journey.py --keep   # leave everything running until Ctrl-C

tests/integration/test_outbound_netns.py runs the same story as a test.
"""

from __future__ import annotations

import argparse
import imaplib
import os
import poplib
import random
import shutil
import smtplib
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.dnsserver import DNSServer  # noqa: E402

PASSWORD = "journey-password-1"
JIM = "jim@sendermail.test"
JANE = "jane@recipientmail.test"


def can_run() -> str | None:
    """None when the journey can run here, else why not."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "needs the `ip` command (iproute2)"
    probe = f"mwprobe{random.randrange(10**6)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    if made.returncode != 0:
        return f"cannot create network namespaces here: {made.stderr.strip()}"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _client_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # self-signed certificates from `mailwright init`
    return ctx


class Host:
    """One namespace with one Mailwright instance."""

    def __init__(self, journey: Journey, name: str, domain: str, address: str) -> None:
        self.journey = journey
        self.ns = f"{journey.tag}{name}"
        self.domain = domain
        self.address = address
        self.dir = journey.root / domain
        self.cfg = self.dir / "mailwright.toml"
        self.proc: subprocess.Popen[str] | None = None
        self.log: list[str] = []

    def setup_network(self) -> None:
        host_end, ns_end = f"{self.ns}h", f"{self.ns}n"
        _ip("netns", "add", self.ns)
        _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        _ip("link", "set", ns_end, "netns", self.ns)
        _ip("link", "set", host_end, "master", self.journey.bridge)
        _ip("link", "set", host_end, "up")
        _ip("netns", "exec", self.ns, "ip", "addr", "add", f"{self.address}/24", "dev", ns_end)
        _ip("netns", "exec", self.ns, "ip", "link", "set", ns_end, "up")
        _ip("netns", "exec", self.ns, "ip", "link", "set", "lo", "up")

    def mailwright(self, *args: str, stdin: str | None = None) -> str:
        cmd = [sys.executable, "-m", "mailwright", *args]
        done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()}")
        return done.stdout

    def init(self, dns: DNSServer) -> None:
        self.mailwright("init", str(self.dir), "--domain", self.domain,
                        "--hostname", f"mail.{self.domain}", "--bind", self.address)
        text = self.cfg.read_text()
        text = text.replace("nameservers = []", f'nameservers = ["{dns.config_value}"]')
        text = text.replace('retry_schedule = ["1m", "5m", "15m", "30m", "1h", "2h", "4h"]',
                            'retry_schedule = ["2s", "5s", "30s"]')
        self.cfg.write_text(text)

    def add_user(self, address: str) -> None:
        self.mailwright("user", "add", address, "--password-stdin", "-c", str(self.cfg),
                        stdin=PASSWORD + "\n")

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, sys.executable, "-m", "mailwright", "serve",
             "-c", str(self.cfg)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO / "src")))
        ready = threading.Event()

        def pump() -> None:
            assert self.proc is not None and self.proc.stderr is not None
            for line in self.proc.stderr:
                self.log.append(line)
                if "ready" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        ready.wait(30)
        if self.proc.poll() is not None or not any("ready" in ln for ln in self.log):
            raise RuntimeError(f"{self.domain} did not start:\n{''.join(self.log)}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def teardown(self) -> None:
        self.stop()
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


class Journey:
    """Sets up the two hosts and the DNS server; tears everything down on exit."""

    def __init__(self, root: Path | None = None) -> None:
        self.tag = f"mw{random.randrange(16**4):04x}"
        self.net = f"10.77.{random.randrange(1, 250)}"
        self.bridge = f"{self.tag}br"
        self._tmp = None if root else tempfile.TemporaryDirectory(prefix="mailwright-journey-")
        self.root = root or Path(self._tmp.name if self._tmp else ".")
        self.dns = DNSServer(host=f"{self.net}.254")
        self.sender = Host(self, "s", "sendermail.test", f"{self.net}.1")
        self.recipient = Host(self, "r", "recipientmail.test", f"{self.net}.2")

    def __enter__(self) -> Journey:
        try:
            self.setup()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.teardown()

    def setup(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.net}.254/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for host in (self.sender, self.recipient):
            host.setup_network()
        self.dns.start()
        for host in (self.sender, self.recipient):
            self.dns.add(host.domain, "MX", f"10 mail.{host.domain}.")
            self.dns.add(f"mail.{host.domain}", "A", host.address)
            self.dns.add(host.domain, "TXT", f"v=spf1 ip4:{host.address} -all")
            host.init(self.dns)
        self.sender.add_user(JIM)
        self.recipient.add_user(JANE)
        self.sender.start()
        self.recipient.start()

    def teardown(self) -> None:
        for host in (self.sender, self.recipient):
            host.teardown()
        self.dns.stop()
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        if self._tmp is not None:
            self._tmp.cleanup()

    # -- the story -------------------------------------------------------------------------------

    def jim_sends(self, subject: str, body: str) -> None:
        msg = EmailMessage()
        msg["From"] = f"Jim <{JIM}>"
        msg["To"] = f"Jane <{JANE}>"
        msg["Subject"] = subject
        msg.set_content(body)
        with smtplib.SMTP(self.sender.address, 587, timeout=30) as smtp:
            smtp.starttls(context=_client_tls())
            smtp.login(JIM, PASSWORD)
            smtp.send_message(msg)

    def jane_reads_imap(self, subject: str, timeout: float = 60.0) -> bytes:
        """Poll Jane's INBOX over IMAP until a message with ``subject`` is there; return it."""
        end = time.monotonic() + timeout
        while True:
            with imaplib.IMAP4(self.recipient.address, 143, timeout=30) as imap:
                imap.starttls(ssl_context=_client_tls())
                imap.login(JANE, PASSWORD)
                imap.select("INBOX")
                typ, data = imap.search(None, "SUBJECT", f'"{subject}"')
                numbers = data[0].split() if typ == "OK" and data and data[0] else []
                if numbers:
                    typ, fetched = imap.fetch(numbers[-1], "(BODY.PEEK[])")
                    for item in fetched:
                        if isinstance(item, tuple):
                            return bytes(item[1])
                imap.logout()
            if time.monotonic() > end:
                raise TimeoutError(f"no message {subject!r} in Jane's INBOX")
            time.sleep(0.5)

    def jane_reads_pop3(self, subject: str) -> bytes:
        pop = poplib.POP3(self.recipient.address, 110, timeout=30)
        try:
            pop.stls(context=_client_tls())
            pop.user(JANE)
            pop.pass_(PASSWORD)
            count, _ = pop.stat()
            for i in range(count, 0, -1):
                _, lines, _ = pop.retr(i)
                raw = b"\r\n".join(lines)
                if subject.encode() in raw:
                    return raw
        finally:
            pop.quit()
        raise LookupError(f"no message {subject!r} over POP3")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep running until Ctrl-C")
    args = parser.parse_args()
    reason = can_run()
    if reason:
        print(f"outbound journey: {reason}", file=sys.stderr)
        return 1
    with Journey() as journey:
        print(f"sendermail.test     at {journey.sender.address} (namespace {journey.sender.ns})")
        print(f"recipientmail.test  at {journey.recipient.address} "
              f"(namespace {journey.recipient.ns})")
        print(f"DNS                 at {journey.dns.config_value}")
        subject = f"Hello Jane ({time.strftime('%H:%M:%S')})"
        journey.jim_sends(subject, "Hi Jane,\n\nthis came the long way round.\n\nJim\n")
        print(f"Jim sent {subject!r} through submission on {journey.sender.address}:587")
        message = journey.jane_reads_imap(subject)
        print(f"Jane read it over IMAP on {journey.recipient.address}:143:\n")
        print(message.decode("utf-8", "replace"))
        journey.jane_reads_pop3(subject)
        print(f"...and over POP3 on {journey.recipient.address}:110")
        if args.keep:
            print("running; Ctrl-C to stop and clean up")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
