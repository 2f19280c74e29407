"""Keeps one certificate for [server] hostname and [acme] names issued and fresh.

Everything lives under `<data_dir>/acme/` (files 0600): `account.key` (the ES256 account key),
`cert.pem` (the chain in use), `key.pem` (its key) and, while asked for, `renew-request`
(written by `mailwright tls renew`). A certificate is renewed when its names no longer match
the config, inside the RFC 9773 window the server suggests when it offers renewalInfo, and
otherwise once two thirds of its lifetime have passed (Let's Encrypt's 90 days: day 60), so
that a failing CA leaves a month of retries. A renewed certificate is loaded into the shared
`ServerTLS` context: every listener presents it on its next handshake, no restart.

Challenges: tls-alpn-01 (RFC 8737) answered by the `https` listener through `ServerTLS`, or
http-01 (RFC 8555 8.3) answered by the `http` listener from `http_tokens`.

With several workers the loop runs in the primary only; a validation connection may reach any
worker, so each challenge is installed in every worker before the CA is told to validate, and
every worker loads a renewed certificate (`peers`: requests through workers.channel).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mailwright.acme.client import AcmeClient, AcmeError, ari_cert_id, make_csr
from mailwright.config import Config
from mailwright.log import event
from mailwright.tls import ServerTLS

log = logging.getLogger("mailwright.acme")
RETRY_AFTER_FAILURE = 300.0  # seconds; bounded by check_interval


def acme_dir(config: Config) -> Path:
    return config.server.data_dir / "acme"


def certificate_names(config: Config) -> list[str]:
    names = [config.server.hostname]
    names += [n for n in config.acme.names if n not in names]
    return names


def _write_private(path: Path, data: bytes) -> None:
    """Atomically, mode 0600 from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())  # fmt: skip


class CertificateManager:
    def __init__(self, config: Config, tls: ServerTLS, *, https: bool, http: bool) -> None:
        self.config = config
        self.tls = tls
        self.dir = acme_dir(config)
        self.names = certificate_names(config)
        self.can_alpn = https
        self.can_http = http
        # RFC 8555 8.3: token -> key authorization, served at /.well-known/acme-challenge/TOKEN
        self.http_tokens: dict[str, str] = {}
        self.renew_at: dt.datetime | None = None
        self.issued = 0  # certificates obtained by this process
        self.last_error = ""
        self._wake = asyncio.Event()
        # With several workers: the primary's way to have the others install challenges and
        # certificates (workers.channel.PeerRequests.ask); None in a single process.
        self.peers: Callable[[str], Coroutine[Any, Any, int]] | None = None
        self.peer_count = 0
        self._pending: dict[str, str] = {}  # challenges installed now: key -> the `+` request
        self._resending: set[asyncio.Task[int]] = set()

    @property
    def cert_path(self) -> Path:
        return self.dir / "cert.pem"

    @property
    def key_path(self) -> Path:
        return self.dir / "key.pem"

    @property
    def request_path(self) -> Path:
        return self.dir / "renew-request"

    # -- start-up ----------------------------------------------------------------------------

    def load_existing(self) -> bool:
        """Serve a certificate issued before (by an earlier run) if it still fits."""
        cert = self._current()
        if cert is None or not self._covers(cert) or cert.not_valid_after_utc <= _now():
            return False
        try:
            self.tls.reload(self.cert_path, self.key_path)
        except (OSError, ValueError) as e:  # ssl.SSLError: a key that does not match
            event(log, "acme certificate not loaded", path=str(self.cert_path), error=str(e))
            return False
        return True

    def _current(self) -> x509.Certificate | None:
        try:
            return x509.load_pem_x509_certificates(self.cert_path.read_bytes())[0]
        except (OSError, ValueError):
            return None

    def _covers(self, cert: x509.Certificate) -> bool:
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return False
        return set(san.get_values_for_type(x509.DNSName)) == set(self.names)

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Forever: issue or renew when due, then sleep until the next look."""
        await self._wait_for_peers()
        while True:
            wait = self.config.acme.check_interval
            try:
                if await self.due():
                    await self.obtain()
                    self.last_error = ""
                if self.renew_at is not None:  # wake up when the renewal falls due
                    until = (self.renew_at - _now()).total_seconds()
                    wait = max(1.0, min(wait, until))
            except Exception as e:  # noqa: BLE001 - a CA answering nonsense must not end the loop
                self.last_error = f"{type(e).__name__}: {e}"
                event(log, "acme failed", error=self.last_error[:300])
                wait = min(wait, RETRY_AFTER_FAILURE)  # not sooner: CAs rate-limit failures
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except TimeoutError:
                pass

    def wake(self) -> None:
        self._wake.set()

    async def due(self) -> bool:
        if self.request_path.exists():
            return True
        cert = self._current()
        if cert is None or not self._covers(cert):
            return True
        self.renew_at = await self._renewal_time(cert)
        return _now() >= self.renew_at

    async def _renewal_time(self, cert: x509.Certificate) -> dt.datetime:
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        fallback = start + (end - start) * 2 / 3
        try:
            client = await self._client(register=False)
            info = await client.renewal_info(self.cert_path.read_bytes())
        except (AcmeError, OSError, ValueError, x509.ExtensionNotFound):
            return fallback
        window = (info or {}).get("suggestedWindow") or {}
        try:
            # RFC 9773 4.2: any time in the window; its start keeps us early and predictable.
            return dt.datetime.fromisoformat(window["start"].replace("Z", "+00:00"))
        except (KeyError, TypeError, AttributeError, ValueError):
            return fallback

    async def _client(self, *, register: bool = True) -> AcmeClient:
        key_file = self.dir / "account.key"
        try:
            loaded = serialization.load_pem_private_key(key_file.read_bytes(), None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{key_file}: not an EC P-256 key")
            key = loaded
        except FileNotFoundError:
            key = ec.generate_private_key(ec.SECP256R1())
            _write_private(key_file, _pem_key(key))
        client = AcmeClient(self.config.acme.directory, key, self.config.acme.ca_file)
        await client.load_directory()
        if register:
            await client.register(self.config.acme.email)
        return client

    async def obtain(self) -> None:
        """RFC 8555 7.4: order, answer every authorization, finalize, download, install."""
        client = await self._client()
        replaces = ""
        if "renewalInfo" in client.directory and self.cert_path.exists():
            try:
                replaces = ari_cert_id(self.cert_path.read_bytes())  # RFC 9773 5
            except (ValueError, x509.ExtensionNotFound):
                replaces = ""
        try:
            order_url, order = await client.new_order(self.names, replaces)
        except AcmeError:
            if not replaces:
                raise
            order_url, order = await client.new_order(self.names)  # already replaced: plain
        for authz_url in order.get("authorizations", []):
            await self._authorize(client, authz_url)
        order = await client.poll(order_url, ("ready", "valid"))
        key = ec.generate_private_key(ec.SECP256R1())
        if order["status"] == "ready":
            from mailwright.acme.client import b64url

            await client.post(order["finalize"], {"csr": b64url(make_csr(self.names, key))})
            order = await client.poll(order_url, ("valid",))
        chain = (await client.get(order["certificate"])).body
        x509.load_pem_x509_certificates(chain)  # refuse to install what does not parse
        # key first: a crash between the two leaves a key with no matching cert, which
        # load_existing refuses (load_cert_chain checks the pair) rather than a mismatched pair.
        _write_private(self.key_path, _pem_key(key))
        _write_private(self.cert_path, chain)
        self.tls.reload(self.cert_path, self.key_path)
        await self._tell_peers("r")
        self.request_path.unlink(missing_ok=True)
        self.issued += 1
        cert = x509.load_pem_x509_certificates(chain)[0]
        self.renew_at = None
        event(log, "certificate issued", names=",".join(self.names),
              not_after=cert.not_valid_after_utc.isoformat(), issuer=cert.issuer.rfc4514_string())

    # -- several workers ---------------------------------------------------------------------

    async def _wait_for_peers(self, deadline: float = 30.0) -> None:
        """Before the first order: until every other worker answers (they are forked after
        this one), so that none of them starts serving without the challenges."""
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        while self.peers is not None and loop.time() < end:
            if await self.peers("s") >= self.peer_count:
                return
            await asyncio.sleep(0.2)

    async def _tell_peers(self, request: str) -> None:
        op, _, rest = request.partition(" ")
        key = " ".join(rest.split(" ")[:2])
        if op == "+":
            self._pending[key] = request
        elif op == "-":
            self._pending.pop(key, None)
        if self.peers is None:
            return
        acks = await self.peers(request)
        if acks < self.peer_count:  # the validation may reach a worker that lacks it: retried
            event(log, "acme peers", logging.WARNING, request=" ".join(request.split(" ")[:2]),
                  acknowledged=acks, workers=self.peer_count)  # fmt: skip

    def apply_peer_request(self, request: str) -> None:
        """In a worker that does not run the loop: what the primary asked (`_tell_peers`)."""
        op, _, rest = request.partition(" ")
        if op == "r":
            if self.load_existing():
                event(log, "acme certificate loaded", path=str(self.cert_path))
            return
        if op == "s":  # a worker (re)started: the primary installs what is pending there too
            if self.peers is not None:
                for pending in list(self._pending.values()):
                    task = asyncio.get_running_loop().create_task(self.peers(pending))
                    self._resending.add(task)
                    task.add_done_callback(self._resending.discard)
            return
        kind, _, rest = rest.partition(" ")
        key, _, key_auth = rest.partition(" ")
        if op == "+" and kind == "alpn":
            self.tls.add_alpn_challenge(key, key_auth)
        elif op == "-" and kind == "alpn":
            self.tls.remove_alpn_challenge(key)
        elif op == "+" and kind == "http":
            self.http_tokens[key] = key_auth
        elif op == "-" and kind == "http":
            self.http_tokens.pop(key, None)
        else:
            raise ValueError(f"unknown ACME request {request[:40]!r}")

    async def _authorize(self, client: AcmeClient, authz_url: str) -> None:
        authz: dict[str, Any] = (await client.get(authz_url)).json()
        if authz.get("status") == "valid":
            return
        name = authz["identifier"]["value"]
        offered = {c["type"]: c for c in authz.get("challenges", [])}
        kind = self._choose(offered)
        challenge = offered[kind]
        key_auth = client.key_authorization(challenge["token"])
        token = challenge["token"]
        if kind == "tls-alpn-01":
            self.tls.add_alpn_challenge(name, key_auth)
            await self._tell_peers(f"+ alpn {name} {key_auth}")
        else:
            self.http_tokens[token] = key_auth
            await self._tell_peers(f"+ http {token} {key_auth}")
        try:
            await client.post(challenge["url"], {})  # RFC 8555 7.5.1: ready, validate now
            await client.poll(authz_url, ("valid",))
        finally:
            self.tls.remove_alpn_challenge(name)
            self.http_tokens.pop(token, None)
            await self._tell_peers(f"- alpn {name}" if kind == "tls-alpn-01" else f"- http {token}")

    def _choose(self, offered: dict[str, Any]) -> str:
        order = ["tls-alpn-01", "http-01"]
        if self.config.acme.challenge == "http-01":
            order.reverse()
        possible = {"tls-alpn-01": self.can_alpn, "http-01": self.can_http}
        for kind in order:
            if kind in offered and possible[kind]:
                return kind
        raise AcmeError(f"no usable challenge among {sorted(offered)}: tls-alpn-01 needs an "
                        "https listener (port 443), http-01 an http listener (port 80)")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
