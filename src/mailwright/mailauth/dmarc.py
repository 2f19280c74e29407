"""DMARC, RFC 7489: policy discovery, identifier alignment and the sender's requested policy.

The organizational domain (RFC 7489 3.2) comes from the Public Suffix List, through the
``publicsuffixlist`` package (a hard dependency: the list ships inside the wheel, nothing is
downloaded at run time). Both parts of the list are used, ICANN and private: ``a.github.io`` and
``b.github.io`` belong to different owners and must not align with each other. The list is
refreshed by upgrading the package (``pip install -U publicsuffixlist``; its version carries the
list's date), see docs/operator.md; ``psl_source()`` says which list is in use.
"""

from __future__ import annotations

import enum
import functools
import importlib.metadata
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from publicsuffixlist import PSLFILE, PublicSuffixList

from .dnsquery import AuthDNS, DNSTempError

__all__ = [
    "AuthIdentifier",
    "DMARCOutcome",
    "DMARCRecord",
    "DMARCRecordError",
    "DMARCResult",
    "Discovery",
    "Policy",
    "aligned",
    "discover",
    "evaluate",
    "organizational_domain",
    "parse_record",
    "psl_source",
]


class DMARCRecordError(ValueError):
    """A TXT record at _dmarc is not a usable DMARC record."""


class Policy(enum.Enum):
    NONE = "none"
    QUARANTINE = "quarantine"
    REJECT = "reject"


class DMARCResult(enum.Enum):
    """RFC 7489 11.2 Authentication-Results values."""

    NONE = "none"
    PASS = "pass"
    FAIL = "fail"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


@dataclass(frozen=True, slots=True)
class DMARCRecord:
    """A parsed policy record (RFC 7489 6.3); defaults are the RFC's."""

    policy: Policy
    subdomain_policy: Policy | None = None
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100
    rua: tuple[str, ...] = ()
    ruf: tuple[str, ...] = ()
    fo: str = "0"

    def policy_for(self, from_domain: str, record_domain: str) -> Policy:
        """sp= applies when the record was found at the organizational domain above From."""
        if from_domain != record_domain and self.subdomain_policy is not None:
            return self.subdomain_policy
        return self.policy


_TAG_RE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$", re.DOTALL)


def _uris(value: str) -> tuple[str, ...]:
    uris = []
    for item in value.split(","):
        item = item.strip()
        # RFC 7489 6.2: a URI, optionally with "!size"; only mailto: is meaningful to us.
        if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$", item):
            uris.append(item)
    return tuple(uris)


def parse_record(text: str) -> DMARCRecord:
    """Parse one TXT record. RFC 7489 6.6.3: a bad p= with a valid rua= acts as p=none."""
    parts = [p for p in text.split(";")]
    if not parts or not re.match(r"^\s*v\s*=\s*DMARC1\s*$", parts[0]):
        raise DMARCRecordError("record does not start with v=DMARC1")
    tags: dict[str, str] = {}
    for part in parts[1:]:
        if not part.strip():
            continue
        m = _TAG_RE.match(part)
        if m is None:
            raise DMARCRecordError(f"bad tag {part.strip()!r}")
        name = m.group(1).lower()
        if name not in tags:  # first occurrence wins
            tags[name] = m.group(2)
    rua = _uris(tags.get("rua", ""))

    def policy_tag(name: str) -> Policy | None:
        raw = tags.get(name)
        if raw is None:
            return None
        try:
            return Policy(raw.lower())
        except ValueError:
            raise DMARCRecordError(f"bad {name}={raw}") from None

    try:
        policy = policy_tag("p")
        subdomain = policy_tag("sp")
        if policy is None:
            raise DMARCRecordError("no p= tag")
    except DMARCRecordError:
        if rua:
            policy, subdomain = Policy.NONE, None
        else:
            raise
    adkim = tags.get("adkim", "r").lower()
    aspf = tags.get("aspf", "r").lower()
    if adkim not in ("r", "s") or aspf not in ("r", "s"):
        raise DMARCRecordError("adkim/aspf must be r or s")
    try:
        pct = int(tags.get("pct", "100"))
    except ValueError:
        raise DMARCRecordError("bad pct=") from None
    pct = min(max(pct, 0), 100)
    return DMARCRecord(
        policy=policy,
        subdomain_policy=subdomain,
        adkim=adkim,
        aspf=aspf,
        pct=pct,
        rua=rua,
        ruf=_uris(tags.get("ruf", "")),
        fo=tags.get("fo", "0"),
    )


# -- organizational domain (RFC 7489 3.2) -------------------------------------------------------

@functools.cache
def _psl() -> PublicSuffixList:
    """The parsed list, made on first use rather than at import (tens of milliseconds of CPU
    that every `mailwright` command and server process would pay, most of them never asking)."""
    return PublicSuffixList(only_icann=False)


def psl_source() -> str:
    """Which public suffix data the organizational domain comes from (for reports and docs)."""
    try:
        version = importlib.metadata.version("publicsuffixlist")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - installed from source
        version = "unknown version"
    return f"publicsuffixlist {version} ({PSLFILE})"


def organizational_domain(domain: str) -> str:
    """RFC 7489 3.2: the public suffix plus one label (the domain itself when it is a public
    suffix, or shorter)."""
    domain = domain.lower().rstrip(".")
    found = _psl().privatesuffix(domain)
    return found if isinstance(found, str) else domain


def aligned(identifier: str, from_domain: str, mode: str) -> bool:
    """RFC 7489 3.1: strict needs equal names, relaxed equal organizational domains."""
    a = identifier.lower().rstrip(".")
    b = from_domain.lower().rstrip(".")
    if not a or not b:
        return False
    if mode == "s":
        return a == b
    return a == b or organizational_domain(a) == organizational_domain(b)


# -- discovery (RFC 7489 6.6.3) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Discovery:
    """The record that applies to a From domain, where it was found, or why there is none."""

    record: DMARCRecord | None
    domain: str  # where the record was found ("" if none)
    temperror: bool = False
    reason: str = ""


async def _fetch(dns: AuthDNS, domain: str) -> tuple[DMARCRecord | None, str]:
    answers = await dns.txt(f"_dmarc.{domain}")
    candidates = [a for a in answers if a[:8].lower() == b"v=dmarc1"]
    if not candidates:
        return None, f"no DMARC record at _dmarc.{domain}"
    if len(candidates) > 1:
        # RFC 7489 6.6.3 step 5: several records end discovery.
        return None, f"several DMARC records at _dmarc.{domain}"
    try:
        return parse_record(candidates[0].decode("utf-8", errors="replace")), ""
    except DMARCRecordError as exc:
        return None, f"invalid DMARC record at _dmarc.{domain}: {exc}"


async def discover(dns: AuthDNS, from_domain: str) -> Discovery:
    """Look up _dmarc.<From domain>, then _dmarc.<organizational domain> (RFC 7489 6.6.3)."""
    domain = from_domain.lower().rstrip(".")
    try:
        record, reason = await _fetch(dns, domain)
        if record is not None:
            return Discovery(record, domain)
        org = organizational_domain(domain)
        if org != domain:
            record, org_reason = await _fetch(dns, org)
            if record is not None:
                return Discovery(record, org)
            reason = f"{reason}; {org_reason}"
    except DNSTempError as exc:
        return Discovery(None, "", temperror=True, reason=f"DNS failure: {exc}")
    return Discovery(None, "", reason=reason)


# -- evaluation ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DMARCOutcome:
    """The DMARC verdict for one message."""

    result: DMARCResult
    from_domain: str
    policy: Policy | None  # the published policy that applies (p= or sp=), None without record
    disposition: Policy  # what the sender asks for this message after pct= sampling
    record_domain: str = ""
    reason: str = ""
    aligned_spf: bool = False
    aligned_dkim: bool = False
    record: DMARCRecord | None = None


@dataclass(frozen=True, slots=True)
class AuthIdentifier:
    """An authenticated (or attempted) domain with its result, as DMARC consumes them."""

    domain: str
    result: str  # "pass", "fail", "temperror", ...


def evaluate(
    discovery: Discovery,
    from_domain: str,
    spf: AuthIdentifier | None,
    dkim: Sequence[AuthIdentifier],
    *,
    sample: Callable[[], float] = random.random,
) -> DMARCOutcome:
    """Apply alignment (RFC 7489 3.1) and the policy (6.6.2-6.6.4) to the results we have."""
    if discovery.temperror:
        return DMARCOutcome(
            DMARCResult.TEMPERROR, from_domain, None, Policy.NONE, reason=discovery.reason
        )
    record = discovery.record
    if record is None:
        return DMARCOutcome(
            DMARCResult.NONE, from_domain, None, Policy.NONE, reason=discovery.reason
        )
    spf_ok = (
        spf is not None and spf.result == "pass" and aligned(spf.domain, from_domain, record.aspf)
    )
    dkim_ok = any(
        d.result == "pass" and aligned(d.domain, from_domain, record.adkim) for d in dkim
    )
    policy = record.policy_for(from_domain, discovery.domain)
    base = DMARCOutcome(
        DMARCResult.FAIL,
        from_domain,
        policy,
        Policy.NONE,
        record_domain=discovery.domain,
        aligned_spf=spf_ok,
        aligned_dkim=dkim_ok,
        record=record,
    )
    if spf_ok or dkim_ok:
        which = "DKIM" if dkim_ok else "SPF"
        return replace(base, result=DMARCResult.PASS, reason=f"aligned {which} pass")
    # A temporary DNS failure of an aligned identifier might have been a pass: say so rather
    # than claim a failure the sender's DNS did not earn.
    maybe = (
        spf is not None
        and spf.result == "temperror"
        and aligned(spf.domain, from_domain, record.aspf)
    ) or any(
        d.result == "temperror" and aligned(d.domain, from_domain, record.adkim) for d in dkim
    )
    if maybe:
        return replace(
            base,
            result=DMARCResult.TEMPERROR,
            reason="DNS failure while checking an aligned identifier",
        )
    disposition = policy
    if record.pct < 100 and sample() * 100 >= record.pct:
        # RFC 7489 6.6.4: messages outside the sample get the next less strict policy.
        disposition = Policy.QUARANTINE if policy is Policy.REJECT else Policy.NONE
    return replace(base, disposition=disposition, reason="no aligned SPF or DKIM pass")
