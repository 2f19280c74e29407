"""MTA-STS (RFC 8461): a domain's promise, over HTTPS, that its MX hosts speak verified TLS.

The lookup (RFC 8461 5.1), in order:

1. the TXT record ``_mta-sts.DOMAIN`` (``v=STSv1; id=...``, 3.1); exactly one valid record;
2. a cached, unexpired policy with the same ``id`` is used as is;
3. otherwise the policy is fetched from ``https://mta-sts.DOMAIN/.well-known/mta-sts.txt``
   with a certificate valid for that name (system store plus ``[outbound] ca_file``), no
   redirects, a bounded size (64 KiB) and a deadline (3.3), and cached for its ``max_age``;
4. when the record is missing or the fetch fails, an unexpired cached policy still applies
   (5.1: a network attacker must not be able to remove a policy by blocking its fetch).

A policy has a mode: ``enforce`` (an MX host that does not match, or whose certificate does not
verify, is not used: the message waits), ``testing`` (failures are only reported, TLS-RPT) or
``none``. MX patterns match host names exactly or, for ``*.example.com``, one leftmost label
(4.1). Cached policies live in memory (bounded) and, when ``cache_file`` is given, in a JSON file
that a restart reads back (written whole, through a temporary file and a rename, when a new
policy is fetched): an attacker who can block the fetch must not win by waiting for a restart.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mailwright.dns.resolver import DNSError, Resolver
from mailwright.transport.https import HTTPError, request

log = logging.getLogger("mailwright.transport")

__all__ = ["MTASTS", "Policy", "PolicyError", "PolicyLookup", "our_policy", "parse_policy",
           "parse_record", "policy_id"]

Mode = Literal["enforce", "testing", "none"]
_MODES: dict[str, Mode] = {"enforce": "enforce", "testing": "testing", "none": "none"}
MAX_POLICY_SIZE = 64 * 1024  # RFC 8461 3.3 suggests this bound
MAX_AGE_LIMIT = 31557600  # RFC 8461 3.2: max_age at most one year


class PolicyError(ValueError):
    """The record or the policy text does not follow RFC 8461 3."""


@dataclass(frozen=True, slots=True)
class Policy:
    mode: Mode
    mx: tuple[str, ...]
    max_age: int
    id: str = ""  # the TXT record's id that this policy was fetched for
    text: tuple[str, ...] = ()  # the policy's lines, for TLS-RPT's policy-string (RFC 8460 4.4)

    def matches(self, host: str) -> bool:
        """RFC 8461 4.1: exact name, or ``*.`` matching exactly one leftmost label."""
        name = host.lower().rstrip(".")
        for pattern in self.mx:
            if pattern.startswith("*."):
                label, _, rest = name.partition(".")
                if label and rest == pattern[2:]:
                    return True
            elif name == pattern:
                return True
        return False


def parse_record(texts: list[bytes]) -> str:
    """The policy id of the one valid ``v=STSv1`` record among TXT strings (RFC 8461 3.1)."""
    found: list[str] = []
    for raw in texts:
        text = raw.decode("ascii", "replace").strip()
        if not text.startswith("v=STSv1"):
            continue
        fields = {}
        for item in text.split(";"):
            key, eq, value = item.strip().partition("=")
            if eq:
                fields[key.strip()] = value.strip()
        if fields.get("v") != "STSv1":
            continue
        policy_id = fields.get("id", "")
        # RFC 8461 3.1: sts-id = 1*32(ALPHA / DIGIT)
        if not (1 <= len(policy_id) <= 32 and policy_id.isascii() and policy_id.isalnum()):
            raise PolicyError(f"invalid id in {text!r}")
        found.append(policy_id)
    if not found:
        raise PolicyError("no v=STSv1 record")
    if len(found) > 1:
        raise PolicyError("more than one v=STSv1 record")  # RFC 8461 3.1: then no policy
    return found[0]


def parse_policy(body: bytes, policy_id: str = "") -> Policy:
    """The policy file of RFC 8461 3.2 (key: value lines, CRLF or LF)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError("policy is not UTF-8") from exc
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    version = mode = max_age = None
    mx: list[str] = []
    for line in lines:
        key, colon, value = line.partition(":")
        if not colon:
            raise PolicyError(f"not a key: value line: {line[:60]!r}")
        key, value = key.strip(), value.strip()
        if key == "version":
            version = value
        elif key == "mode":
            mode = value
        elif key == "max_age":
            if not value.isdigit() or len(value) > 10:
                raise PolicyError(f"invalid max_age {value!r}")
            max_age = min(int(value), MAX_AGE_LIMIT)
        elif key == "mx":
            mx.append(value.lower().rstrip("."))
        # RFC 8461 3.2: unknown keys are ignored (extensions)
    if version != "STSv1":
        raise PolicyError("version is not STSv1")
    valid_mode = _MODES.get(mode or "")
    if valid_mode is None:
        raise PolicyError(f"invalid mode {mode!r}")
    if max_age is None:
        raise PolicyError("no max_age")
    if mode != "none" and not mx:
        raise PolicyError("no mx in an enforce or testing policy")
    return Policy(valid_mode, tuple(mx), max_age, policy_id, tuple(lines))


@dataclass(frozen=True, slots=True)
class PolicyLookup:
    """What the lookup found: the policy to apply (``None``: no MTA-STS for this domain) and,
    when something went wrong on the way, the TLS-RPT result type and text (RFC 8460 4.3)."""

    policy: Policy | None
    failure: str | None = None  # "sts-policy-fetch-error", "sts-policy-invalid", ...
    reason: str = ""


@dataclass
class _Cached:
    policy: Policy
    expires: float


class MTASTS:
    """Policy lookups with the in-memory cache of RFC 8461 5.1 (see the module docstring)."""

    def __init__(self, resolver: Resolver, context: Callable[[], ssl.SSLContext], *,
                 port: int = 443, timeout: float = 30.0, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.time, cache_file: Path | None = None) -> None:
        self.resolver = resolver
        self.context = context  # a verifying context: system store plus [outbound] ca_file
        self.port = port
        self.timeout = timeout
        self.max_entries = max_entries
        self.clock = clock
        self.cache_file = cache_file
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._load()

    def _load(self) -> None:
        if self.cache_file is None:
            return
        try:
            items = json.loads(self.cache_file.read_text())
            now = self.clock()
            for item in items[-self.max_entries:]:
                expires = float(item["expires"])
                if expires > now:
                    policy = parse_policy("\n".join(item["text"]).encode(), str(item["id"]))
                    self._cache[str(item["domain"])] = _Cached(policy, expires)
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, PolicyError) as exc:
            log.warning("MTA-STS cache %s not read: %s", self.cache_file, exc)

    def _save(self) -> None:
        if self.cache_file is None:
            return
        items = [{"domain": d, "id": c.policy.id, "expires": c.expires, "text": list(c.policy.text)}
                 for d, c in self._cache.items()]
        tmp = self.cache_file.with_name(self.cache_file.name + ".tmp")
        try:
            tmp.write_text(json.dumps(items))
            os.replace(tmp, self.cache_file)
        except OSError as exc:
            log.warning("MTA-STS cache %s not written: %s", self.cache_file, exc)

    def cached(self, domain: str) -> Policy | None:
        entry = self._cache.get(domain)
        if entry is None or entry.expires <= self.clock():
            return None
        return entry.policy

    def _store(self, domain: str, policy: Policy) -> None:
        self._cache[domain] = _Cached(policy, self.clock() + policy.max_age)
        self._cache.move_to_end(domain)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        self._save()

    async def lookup(self, domain: str) -> PolicyLookup:
        domain = domain.lower().rstrip(".")
        cached = self.cached(domain)
        try:
            policy_id = parse_record(await self.resolver.txt(f"_mta-sts.{domain}"))
        except DNSError as exc:
            # No record (or DNS trouble): a cached policy still holds (RFC 8461 5.1).
            if cached is None and exc.temporary:
                return PolicyLookup(None)
            return PolicyLookup(cached)
        except PolicyError as exc:
            return PolicyLookup(cached, None if cached else "sts-policy-invalid", str(exc))
        if cached is not None and cached.id == policy_id:
            return PolicyLookup(cached)
        url = f"https://mta-sts.{domain}/.well-known/mta-sts.txt"
        try:
            response = await request(url, resolver=self.resolver, context=self.context(),
                                     timeout=self.timeout, max_size=MAX_POLICY_SIZE,
                                     port=self.port)
        except HTTPError as exc:
            failure = "sts-webpki-invalid" if exc.tls else "sts-policy-fetch-error"
            return PolicyLookup(cached, failure, str(exc))
        if response.status != 200:
            # RFC 8461 3.3: only a 200 counts; redirects are not followed.
            return PolicyLookup(cached, "sts-policy-fetch-error",
                                f"{url} answered HTTP {response.status}")
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "text/plain":
            return PolicyLookup(cached, "sts-policy-invalid",
                                f"{url} has media type {content_type!r}, not text/plain")
        try:
            policy = parse_policy(response.body, policy_id)
        except PolicyError as exc:
            return PolicyLookup(cached, "sts-policy-invalid", f"{url}: {exc}")
        self._store(domain, policy)
        return PolicyLookup(policy)


# -- our own policy (the inbound side, RFC 8461 3) ----------------------------------------------

def our_policy(mx_hosts: list[str], mode: Mode = "enforce", max_age: int = 604800) -> str:
    """The policy text this server's domains publish at ``https://mta-sts.DOMAIN/.well-known/
    mta-sts.txt`` (RFC 8461 3.2; one week of max_age, as commonly published). Whoever serves the
    file and ``dns-records`` (the ``id``) must use this one function so that they agree."""
    lines = ["version: STSv1", f"mode: {mode}"]
    if mode != "none":  # RFC 8461 3.2: a "none" policy needs no mx
        lines += [f"mx: {host.lower().rstrip('.')}" for host in mx_hosts]
    lines.append(f"max_age: {max_age}")
    return "\r\n".join(lines) + "\r\n"


def policy_id(text: str) -> str:
    """The ``id`` of the ``_mta-sts`` TXT record for a policy text (RFC 8461 3.1): it changes
    exactly when the policy does, which tells senders to fetch it again."""
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def configured_policy(hostname: str, mode: str, max_age: float) -> str:
    """The policy of `[mtasts]` for this server's hostname: what the https listener serves and
    what `dns-records` derives the ``id`` from."""
    return our_policy([hostname], _MODES.get(mode, "testing"), int(max_age))
