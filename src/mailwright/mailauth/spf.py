"""SPF, RFC 7208: is this client IP allowed to send for the MAIL FROM / HELO domain?

Our own evaluator on the shared asynchronous resolver (``AuthDNS``), because pyspf does its DNS
through a synchronous module-level hook that cannot use our resolver cleanly. The whole record is
parsed before anything is evaluated (RFC 7208 4.6: a syntax error anywhere is a permerror), then
the directives run left to right. The RFC 7208 4.6.4 limits are enforced across the whole
evaluation, includes and redirects included: at most ten DNS-querying terms, at most ten address
lookups per "mx" and ten names per "ptr", at most two void lookups; and the whole check has a
time limit (RFC 7208 4.6.4 suggests at least 20 seconds).
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import re
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass

from mailwright.dns.resolver import DNSError, to_ascii_domain

from .dnsquery import AuthDNS, DNSTempError

__all__ = [
    "SPFLimits",
    "SPFOutcome",
    "SPFResult",
    "check_helo",
    "check_host",
    "check_mail_from",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class SPFResult(enum.Enum):
    """RFC 7208 section 2.6 results, with their Authentication-Results spelling."""

    NONE = "none"
    NEUTRAL = "neutral"
    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


@dataclass(frozen=True, slots=True)
class SPFLimits:
    """RFC 7208 4.6.4 processing limits (constructor arguments so tests can tighten them)."""

    dns_terms: int = 10
    void_lookups: int = 2
    mx_addresses: int = 10
    ptr_names: int = 10
    timeout: float = 20.0


@dataclass(frozen=True, slots=True)
class SPFOutcome:
    """The result of one SPF check, with what is needed for Authentication-Results."""

    result: SPFResult
    identity: str  # "mailfrom" or "helo" (RFC 7208 2.3, 2.4)
    domain: str  # the domain whose record was checked ("" when there was none to check)
    sender: str  # the <sender> used: MAIL FROM address, or postmaster@helo
    reason: str  # short human text: which term matched, or what went wrong
    explanation: str | None = None  # from exp= on fail (RFC 7208 6.2), never trusted for logic


class _PermError(Exception):
    pass


class _TempError(Exception):
    pass


_QUALIFIERS = {
    "+": SPFResult.PASS,
    "-": SPFResult.FAIL,
    "~": SPFResult.SOFTFAIL,
    "?": SPFResult.NEUTRAL,
}
_MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
_MODIFIER_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_.\-]*)=(.*)$")
# RFC 7208 12: dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ]
_DUAL_CIDR_RE = re.compile(r"^(.*?)(?:/(0|[1-9][0-9]?))?(?://(0|[1-9][0-9]{0,2}))?$", re.DOTALL)
_IP_CIDR_RE = re.compile(r"^(.*?)(?:/(0|[1-9][0-9]{0,2}))?$", re.DOTALL)
_MACRO_RE = re.compile(r"%(?:\{([a-zA-Z])([0-9]*)(r?)([.\-+,/_=]*)\}|(.))", re.DOTALL)
_TOPLABEL_RE = re.compile(
    r"^(?:[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9\-]*[A-Za-z0-9])$"
)
_LABEL_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_\-]{0,61}[A-Za-z0-9_])?$")


@dataclass(frozen=True, slots=True)
class _Directive:
    qualifier: SPFResult
    mechanism: str
    domain_spec: str | None
    cidr4: int
    cidr6: int
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    text: str


@dataclass(frozen=True, slots=True)
class _Record:
    directives: tuple[_Directive, ...]
    redirect: str | None
    exp: str | None


def _check_macro_string(value: str, *, exp: bool) -> None:
    """RFC 7208 7.1 macro-string syntax; exp strings may also use c, r and t."""
    allowed = "slodiphv" + ("crt" if exp else "")
    pos = 0
    while True:
        idx = value.find("%", pos)
        if idx < 0:
            break
        m = _MACRO_RE.match(value, idx)
        if m is None:
            raise _PermError(f"bad macro in {value!r}")
        if m.group(5) is not None:
            if m.group(5) not in "%_-":
                raise _PermError(f"bad macro escape in {value!r}")
        else:
            if m.group(1).lower() not in allowed:
                raise _PermError(f"macro letter {m.group(1)!r} not allowed in {value!r}")
            if m.group(2) and int(m.group(2)) == 0:
                raise _PermError("macro digit transformer must be nonzero")  # RFC 7208 7.3
        pos = m.end()
    for ch in value:
        if not (0x21 <= ord(ch) <= 0x7E):
            raise _PermError(f"invalid character in {value!r}")


def _check_domain_spec(spec: str) -> None:
    """RFC 7208 7.1: domain-spec = macro-string domain-end."""
    if not spec:
        raise _PermError("empty domain-spec")
    _check_macro_string(spec, exp=False)
    if spec.endswith("}") and "%{" in spec:
        return  # ends with a macro-expand
    body = spec[:-1] if spec.endswith(".") else spec
    last = body.rsplit(".", 1)
    if len(last) < 2 or not _TOPLABEL_RE.match(last[1]):
        raise _PermError(f"invalid domain-spec {spec!r}")


def _parse_record(text: str) -> _Record:
    """Parse everything after "v=spf1"; any syntax error is a permerror (RFC 7208 4.6)."""
    directives: list[_Directive] = []
    redirect: str | None = None
    exp: str | None = None
    for term in text.split():
        mod = _MODIFIER_RE.match(term)
        if mod is not None:
            name, value = mod.group(1).lower(), mod.group(2)
            if name == "redirect":
                if redirect is not None:
                    raise _PermError("redirect= appears twice")  # RFC 7208 6
                _check_domain_spec(value)
                redirect = value
            elif name == "exp":
                if exp is not None:
                    raise _PermError("exp= appears twice")
                _check_domain_spec(value)
                exp = value
            else:
                # RFC 7208 6: unknown modifiers are ignored, but must be valid macro-strings.
                _check_macro_string(value, exp=False)
            continue
        qualifier = SPFResult.PASS
        if term[0] in _QUALIFIERS:
            qualifier = _QUALIFIERS[term[0]]
            term = term[1:]
        m = re.match(r"^([A-Za-z0-9]+)(.*)$", term, re.DOTALL)
        if m is None or m.group(1).lower() not in _MECHANISMS:
            raise _PermError(f"unknown mechanism {term!r}")
        name, rest = m.group(1).lower(), m.group(2)
        directives.append(_parse_mechanism(qualifier, name, rest, term))
    return _Record(tuple(directives), redirect, exp)


def _parse_mechanism(qualifier: SPFResult, name: str, rest: str, text: str) -> _Directive:
    spec: str | None = None
    cidr4, cidr6 = 32, 128
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    if name == "all":
        if rest:
            raise _PermError(f"bad term {text!r}")
    elif name in ("include", "exists"):
        if not rest.startswith(":"):
            raise _PermError(f"{name} needs a domain: {text!r}")
        spec = rest[1:]
        _check_domain_spec(spec)
    elif name in ("a", "mx"):
        m = _DUAL_CIDR_RE.match(rest)
        if m is None:  # pragma: no cover - the pattern matches every string
            raise _PermError(f"bad term {text!r}")
        target, c4, c6 = m.groups()
        if c4 is not None:
            cidr4 = int(c4)
        if c6 is not None:
            cidr6 = int(c6)
        if cidr4 > 32 or cidr6 > 128:
            raise _PermError(f"bad prefix length in {text!r}")
        if target:
            if not target.startswith(":"):
                raise _PermError(f"bad term {text!r}")
            spec = target[1:]
            _check_domain_spec(spec)
    elif name == "ptr":
        if rest:
            if not rest.startswith(":"):
                raise _PermError(f"bad term {text!r}")
            spec = rest[1:]
            _check_domain_spec(spec)
    else:  # ip4, ip6
        if not rest.startswith(":"):
            raise _PermError(f"{name} needs an address: {text!r}")
        m = _IP_CIDR_RE.match(rest[1:])
        if m is None:  # pragma: no cover
            raise _PermError(f"bad term {text!r}")
        addr_text, length = m.groups()
        try:
            if name == "ip4":
                addr4 = ipaddress.IPv4Address(addr_text)
                bits = 32 if length is None else int(length)
                if bits > 32:
                    raise ValueError(bits)
                network = ipaddress.IPv4Network((addr4, bits), strict=False)
            else:
                addr6 = ipaddress.IPv6Address(addr_text)
                bits = 128 if length is None else int(length)
                if bits > 128:
                    raise ValueError(bits)
                network = ipaddress.IPv6Network((addr6, bits), strict=False)
        except ValueError:
            raise _PermError(f"bad address in {text!r}") from None
    return _Directive(qualifier, name, spec, cidr4, cidr6, network, text)


def _valid_domain(domain: str) -> bool:
    """RFC 7208 4.3: a well-formed multi-label domain name."""
    if not domain or len(domain) > 253 or "." not in domain.strip("."):
        return False
    labels = domain.rstrip(".").split(".")
    return all(_LABEL_RE.match(label) for label in labels)


def _to_ascii(domain: str) -> str | None:
    domain = domain.strip().rstrip(".").lower()
    if domain.isascii():
        return domain
    try:  # the same IDNA 2008 / UTS 46 mapping the resolver uses
        return to_ascii_domain(domain)
    except DNSError:
        return None


def _client_ip(ip: str) -> IPAddress:
    addr = ipaddress.ip_address(ip.strip("[]").removeprefix("IPv6:"))
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped  # a v4 client seen on a dual-stack socket
    return addr


class _Evaluator:
    def __init__(
        self,
        dns: AuthDNS,
        ip: IPAddress,
        sender: str,
        helo: str,
        receiver: str,
        limits: SPFLimits,
    ) -> None:
        self.dns = dns
        self.ip = ip
        self.sender = sender
        local, _, sender_domain = sender.rpartition("@")
        self.local = local or "postmaster"
        self.sender_domain = sender_domain
        self.helo = helo
        self.receiver = receiver
        self.limits = limits
        self.terms = 0
        self.voids = 0
        self._validated_ptr: str | None = None
        self._ptr_cache: list[str] | None = None

    # -- limits -------------------------------------------------------------------------------

    def count_term(self, text: str) -> None:
        self.terms += 1
        if self.terms > self.limits.dns_terms:
            # RFC 7208 4.6.4: more than 10 DNS-querying terms is a permerror.
            raise _PermError(f"more than {self.limits.dns_terms} DNS lookups (at {text})")

    def count_void(self, answers: Sequence[object]) -> None:
        if not answers:
            self.voids += 1
            if self.voids > self.limits.void_lookups:
                raise _PermError(f"more than {self.limits.void_lookups} void lookups")

    # -- DNS ----------------------------------------------------------------------------------

    async def addresses(self, name: str) -> list[str]:
        try:
            if isinstance(self.ip, ipaddress.IPv4Address):
                return await self.dns.a(name)
            return await self.dns.aaaa(name)
        except DNSTempError as exc:
            raise _TempError(f"DNS failure for {name}: {exc}") from None

    async def spf_record(self, domain: str) -> str | None:
        """RFC 7208 4.4-4.5: fetch and select the one "v=spf1" record, None when absent."""
        try:
            answers = await self.dns.txt(domain)
        except DNSTempError as exc:
            raise _TempError(f"DNS failure for {domain}: {exc}") from None
        records: list[bytes] = []
        for txt in answers:
            low = txt.lower()
            if low == b"v=spf1" or low.startswith(b"v=spf1 "):
                records.append(txt)
        if not records:
            return None
        if len(records) > 1:
            raise _PermError(f"{domain} publishes more than one SPF record")
        try:
            return records[0].decode("ascii")[len("v=spf1") :]
        except UnicodeDecodeError:
            raise _PermError(f"non-ASCII SPF record at {domain}") from None

    # -- macros (RFC 7208 7) ------------------------------------------------------------------

    async def expand(self, value: str, domain: str, *, exp: bool = False) -> str:
        out: list[str] = []
        pos = 0
        for m in _MACRO_RE.finditer(value):
            out.append(value[pos : m.start()])
            pos = m.end()
            esc = m.group(5)
            if esc is not None:
                out.append({"%": "%", "_": " ", "-": "%20"}[esc])
                continue
            letter, digits, reverse, delims = m.groups()[:4]
            raw = await self.macro_value(letter.lower(), domain, exp=exp)
            parts = re.split("[" + re.escape(delims or ".") + "]", raw)
            if reverse:
                parts.reverse()
            if digits:
                parts = parts[-int(digits) :]
            text = ".".join(parts)
            if letter.isupper():
                text = urllib.parse.quote(text, safe="-._~")
            out.append(text)
        out.append(value[pos:])
        return "".join(out)

    async def macro_value(self, letter: str, domain: str, *, exp: bool) -> str:
        if letter == "s":
            return f"{self.local}@{self.sender_domain}"
        if letter == "l":
            return self.local
        if letter == "o":
            return self.sender_domain
        if letter == "d":
            return domain
        if letter == "i":
            if isinstance(self.ip, ipaddress.IPv4Address):
                return str(self.ip)
            return ".".join(self.ip.exploded.replace(":", ""))
        if letter == "p":
            return await self.validated_name(domain)
        if letter == "v":
            return "in-addr" if isinstance(self.ip, ipaddress.IPv4Address) else "ip6"
        if letter == "h":
            return self.helo
        if letter == "c" and exp:
            return str(self.ip)
        if letter == "r" and exp:
            return self.receiver or "unknown"
        if letter == "t" and exp:
            return str(int(time.time()))
        raise _PermError(f"macro {letter!r} not allowed here")

    async def validated_name(self, domain: str) -> str:
        """RFC 7208 7.3 %{p}: a PTR name that resolves back to the client, else "unknown"."""
        if self._validated_ptr is None:
            names = await self.ptr_names()
            chosen = "unknown"
            for name in names:
                if name == domain or name.endswith("." + domain):
                    chosen = name
                    break
            else:
                if names:
                    chosen = names[0]
            self._validated_ptr = chosen
        return self._validated_ptr

    async def ptr_names(self) -> list[str]:
        """Validated reverse names of the client (RFC 7208 5.5), at most ten tried."""
        if self._ptr_cache is not None:
            return self._ptr_cache
        self._ptr_cache = await self._lookup_ptr_names()
        return self._ptr_cache

    async def _lookup_ptr_names(self) -> list[str]:
        try:
            names = await self.dns.ptr(str(self.ip))
        except DNSTempError:
            return []  # RFC 7208 5.5: a PTR lookup error means no match
        self.count_void(names)
        valid: list[str] = []
        for name in names[: self.limits.ptr_names]:
            try:
                addrs = await self.addresses(name)
            except _TempError:
                continue  # RFC 7208 5.5: skip names whose address lookup fails
            if any(_same_ip(a, self.ip) for a in addrs):
                valid.append(name.lower().rstrip("."))
        return valid

    async def target(self, directive: _Directive, domain: str) -> str:
        if directive.domain_spec is None:
            return domain
        return _truncate(await self.expand(directive.domain_spec, domain))

    # -- evaluation (RFC 7208 4.6, 5) ---------------------------------------------------------

    async def check(self, domain: str) -> tuple[SPFResult, str, str | None]:
        """check_host() for one domain: result, reason, explanation."""
        text = await self.spf_record(domain)
        if text is None:
            return SPFResult.NONE, f"no SPF record at {domain}", None
        record = _parse_record(text)
        for directive in record.directives:
            if await self.matches(directive, domain):
                result = directive.qualifier
                explanation = None
                if result is SPFResult.FAIL and record.exp is not None:
                    explanation = await self.explanation(record.exp, domain)
                return result, f"matched {directive.text} at {domain}", explanation
        if record.redirect is not None:
            self.count_term("redirect")
            target = _truncate(await self.expand(record.redirect, domain))
            if not _valid_domain(target):
                raise _PermError(f"redirect to invalid domain {target!r}")
            result, reason, explanation = await self.check(target)
            if result is SPFResult.NONE:
                # RFC 7208 6.1: a redirect target without a record is a permerror.
                raise _PermError(f"redirect target {target} has no SPF record")
            return result, reason, explanation
        return SPFResult.NEUTRAL, f"no term matched at {domain}", None

    async def matches(self, d: _Directive, domain: str) -> bool:
        if d.mechanism == "all":
            return True
        if d.mechanism in ("ip4", "ip6"):
            assert d.network is not None
            return d.network.version == self.ip.version and self.ip in d.network
        self.count_term(d.text)
        target = await self.target(d, domain)
        if d.mechanism == "include":
            if not _valid_domain(target):
                raise _PermError(f"include of invalid domain {target!r}")
            result, reason, _ = await self.check(target)
            if result is SPFResult.PASS:
                return True
            if result in (SPFResult.FAIL, SPFResult.SOFTFAIL, SPFResult.NEUTRAL):
                return False
            if result is SPFResult.TEMPERROR:
                raise _TempError(reason)
            # RFC 7208 5.2: include of a domain without a record (none) is a permerror.
            raise _PermError(f"include:{target}: {reason}")
        if d.mechanism == "a":
            addrs = await self.addresses(target)
            self.count_void(addrs)
            return any(self.in_cidr(a, d) for a in addrs)
        if d.mechanism == "mx":
            try:
                mxs = await self.dns.mx(target)
            except DNSTempError as exc:
                raise _TempError(f"DNS failure for {target}: {exc}") from None
            self.count_void(mxs)
            hosts = [host for _, host in sorted(mxs) if host not in ("", ".")]
            if len(hosts) > self.limits.mx_addresses:
                raise _PermError(f"{target} has more than {self.limits.mx_addresses} MX hosts")
            for host in hosts:
                if any(self.in_cidr(a, d) for a in await self.addresses(host)):
                    return True
            return False
        if d.mechanism == "ptr":
            return any(
                name == target or name.endswith("." + target)
                for name in await self.ptr_names()
            )
        if d.mechanism == "exists":
            try:
                addrs = await self.dns.a(target)  # RFC 7208 5.7: always an A query
            except DNSTempError as exc:
                raise _TempError(f"DNS failure for {target}: {exc}") from None
            self.count_void(addrs)
            return bool(addrs)
        raise _PermError(f"unknown mechanism {d.mechanism}")  # pragma: no cover

    def in_cidr(self, addr: str, d: _Directive) -> bool:
        try:
            candidate = ipaddress.ip_address(addr)
        except ValueError:
            return False
        if candidate.version != self.ip.version:
            return False
        bits = d.cidr4 if candidate.version == 4 else d.cidr6
        return self.ip in ipaddress.ip_network((candidate, bits), strict=False)

    async def explanation(self, spec: str, domain: str) -> str | None:
        """RFC 7208 6.2: any trouble fetching the explanation just means none."""
        try:
            target = _truncate(await self.expand(spec, domain))
            answers = await self.dns.txt(target)
            if len(answers) != 1:
                return None
            text = answers[0].decode("ascii")
            for part in text.split(" "):  # RFC 7208 6.2: explanation-string may hold SP
                _check_macro_string(part, exp=True)
            return (await self.expand(text, domain, exp=True))[:512]
        except (DNSTempError, _PermError, _TempError, UnicodeDecodeError):
            return None


def _same_ip(text: str, ip: IPAddress) -> bool:
    try:
        return ipaddress.ip_address(text) == ip
    except ValueError:
        return False


def _truncate(domain: str) -> str:
    """RFC 7208 7.3: drop leftmost labels until the name fits in 253 characters."""
    domain = domain.rstrip(".")
    while len(domain) > 253 and "." in domain:
        domain = domain.split(".", 1)[1]
    return domain


async def check_host(
    dns: AuthDNS,
    ip: str,
    domain: str,
    sender: str,
    *,
    helo: str = "",
    receiver: str = "",
    identity: str = "mailfrom",
    limits: SPFLimits | None = None,
) -> SPFOutcome:
    """RFC 7208 4: the check_host() function. Never raises for DNS or record trouble."""
    limits = limits or SPFLimits()
    ascii_domain = _to_ascii(domain)
    if ascii_domain is None or not _valid_domain(ascii_domain):
        return SPFOutcome(SPFResult.NONE, identity, domain, sender, "not a valid domain name")
    try:
        client = _client_ip(ip)
    except ValueError:
        return SPFOutcome(SPFResult.PERMERROR, identity, ascii_domain, sender, "bad client IP")
    local, at, _ = sender.rpartition("@")
    full_sender = f"{local or 'postmaster'}@{ascii_domain}" if at or not sender else sender
    evaluator = _Evaluator(dns, client, full_sender, helo, receiver, limits)
    try:
        async with asyncio.timeout(limits.timeout):
            result, reason, explanation = await evaluator.check(ascii_domain)
    except _PermError as exc:
        return SPFOutcome(SPFResult.PERMERROR, identity, ascii_domain, sender, str(exc))
    except (_TempError, TimeoutError) as exc:
        reason = str(exc) or "SPF evaluation timed out"
        return SPFOutcome(SPFResult.TEMPERROR, identity, ascii_domain, sender, reason)
    return SPFOutcome(result, identity, ascii_domain, sender, reason, explanation)


def _is_ip_literal(helo: str) -> bool:
    text = helo.strip()
    if text.startswith("[") and text.endswith("]"):
        return True
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


async def check_helo(
    dns: AuthDNS, ip: str, helo: str, *, receiver: str = "", limits: SPFLimits | None = None
) -> SPFOutcome:
    """RFC 7208 2.3: the HELO identity, checked with sender postmaster@helo."""
    if not helo or _is_ip_literal(helo):
        return SPFOutcome(SPFResult.NONE, "helo", "", helo, "HELO is not a domain name")
    return await check_host(
        dns,
        ip,
        helo,
        f"postmaster@{helo}",
        helo=helo,
        receiver=receiver,
        identity="helo",
        limits=limits,
    )


async def check_mail_from(
    dns: AuthDNS,
    ip: str,
    mail_from: str,
    helo: str,
    *,
    receiver: str = "",
    limits: SPFLimits | None = None,
) -> SPFOutcome:
    """RFC 7208 2.4: the MAIL FROM identity; a null reverse-path uses postmaster@helo."""
    if not mail_from:
        outcome = await check_helo(dns, ip, helo, receiver=receiver, limits=limits)
        return SPFOutcome(
            outcome.result,
            "mailfrom",
            outcome.domain,
            outcome.sender,
            outcome.reason,
            outcome.explanation,
        )
    _, at, domain = mail_from.rpartition("@")
    if not at:
        return SPFOutcome(SPFResult.NONE, "mailfrom", "", mail_from, "MAIL FROM has no domain")
    return await check_host(
        dns, ip, domain, mail_from, helo=helo, receiver=receiver, limits=limits
    )
