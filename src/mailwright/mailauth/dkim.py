"""DKIM, RFC 6376: verifying every signature of incoming mail, signing outgoing mail.

dkimpy does the canonicalization and the cryptography (rsa-sha256, and ed25519-sha256 of
RFC 8463 through PyNaCl). Its verifier asks for keys through a synchronous ``dnsfunc``; we fetch
every key record first on our asynchronous resolver, then run dkimpy in a worker thread with a
``dnsfunc`` that answers from those prefetched records. That keeps the event loop free while large
bodies are hashed and lets us tell a DNS failure (temperror) from a missing key (permerror), which
dkimpy's own ``verify()`` folds into one ``False``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dkim as dkimpy

# ed25519-sha256 (RFC 8463) runs on PyNaCl, which dkimpy uses when it imports: a dependency
# (dkimpy[ed25519]), imported here so that a broken install fails at start-up, not per message.
import nacl.signing  # noqa: F401
from dkim.canonicalization import CanonicalizationPolicy
from dkim.util import InvalidTagValueList, parse_tag_value

from .dnsquery import AuthDNS, DNSTempError
from .headers import split_message
from .keys import DkimKey

__all__ = [
    "FROZEN_HEADERS",
    "SIGNED_HEADERS",
    "DKIMOutcome",
    "KeyAnswer",
    "prefetch_keys",
    "sign_message",
    "verify_dkim",
]

log = logging.getLogger("mailwright.mailauth.dkim")
# dkimpy reports every failed signature at ERROR level; those are results, not our errors.
_dkimpy_log = logging.getLogger("mailwright.mailauth.dkimpy")
_dkimpy_log.setLevel(logging.CRITICAL)

#: RFC 6376 5.4.1 recommended header fields (plus RFC 8058's List-Unsubscribe-Post).
SIGNED_HEADERS: tuple[bytes, ...] = (
    *dkimpy.DKIM.SHOULD,
    b"list-unsubscribe-post",
)
#: Fields signed once more than they occur, so that none can be added (RFC 6376 8.15).
FROZEN_HEADERS: tuple[bytes, ...] = (b"from",)

MAX_SIGNATURES = 8  # bound the work an attacker can ask of us per message
MIN_RSA_BITS = 1024  # RFC 8301 3.2


@dataclass(frozen=True, slots=True)
class DKIMOutcome:
    """The result of one DKIM-Signature (RFC 8601 2.7.1 result names)."""

    result: str  # pass, fail, neutral, policy, temperror, permerror
    domain: str  # d=
    selector: str  # s=
    algorithm: str  # a=
    identity: str  # i= (defaults to @d)
    signature_b: str  # the start of b=, to tell signatures apart (RFC 6008)
    reason: str = ""


@dataclass(frozen=True, slots=True)
class KeyAnswer:
    """A prefetched key record: TXT strings, or a temporary DNS failure."""

    records: tuple[bytes, ...] = ()
    temperror: str | None = None


def _key_name(selector: bytes, domain: bytes) -> str | None:
    try:
        name = (selector + b"._domainkey." + domain).decode("ascii").strip().rstrip(".")
    except UnicodeDecodeError:
        return None
    if not name or any(ch.isspace() for ch in name) or len(name) > 253:
        return None
    return name.lower()


async def prefetch_keys(dns: AuthDNS, names: Sequence[str]) -> dict[str, KeyAnswer]:
    """Fetch key records concurrently; a failure is recorded, never raised."""

    async def one(name: str) -> KeyAnswer:
        try:
            return KeyAnswer(tuple(await dns.txt(name)))
        except DNSTempError as exc:
            return KeyAnswer(temperror=str(exc) or "DNS failure")

    unique = list(dict.fromkeys(names))
    answers = await asyncio.gather(*(one(n) for n in unique))
    return dict(zip(unique, answers, strict=True))


def make_dnsfunc(keys: dict[str, KeyAnswer]) -> Any:
    """A dkimpy ``dnsfunc`` answering from prefetched records only."""

    def dnsfunc(name: bytes | str, timeout: float = 5) -> bytes | None:
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        answer = keys.get(text.strip().rstrip(".").lower())
        if answer is None or not answer.records:
            return None
        # RFC 6376 3.6.2.2: several TXT records at a key name are an error; use the first
        # that looks like a key record, as dkimpy would with the first.
        for record in answer.records:
            if b"p=" in record:
                return record
        return answer.records[0]

    return dnsfunc


@dataclass(frozen=True, slots=True)
class _Sig:
    index: int
    tags: dict[bytes, bytes] | None
    error: str = ""


def _signatures(message: bytes) -> list[_Sig]:
    fields, _ = split_message(message)
    sigs: list[_Sig] = []
    index = 0
    for field in fields:
        if field.name != "dkim-signature":
            continue
        if index >= MAX_SIGNATURES:
            break
        try:
            tags: dict[bytes, bytes] = parse_tag_value(field.value)
            sigs.append(_Sig(index, tags))
        except (InvalidTagValueList, ValueError, TypeError, IndexError) as exc:
            sigs.append(_Sig(index, None, f"malformed signature: {exc}"))
        index += 1
    return sigs


def _text(tags: dict[bytes, bytes] | None, key: bytes, default: str = "") -> str:
    if not tags or key not in tags:
        return default
    return tags[key].decode("ascii", "replace").strip()


def _unsigned_tail(verifier: Any, tags: dict[bytes, bytes]) -> bool:
    try:
        policy = CanonicalizationPolicy.from_c_value(tags.get(b"c", b"simple/simple"))
        body: bytes = policy.canonicalize_body(verifier.body)
        return int(tags[b"l"]) < len(body)
    except Exception:  # unparsable l= or c=: dkimpy would not have passed it anyway
        return True


def _squeeze(value: bytes | None) -> bytes:
    return b"".join((value or b"").split())


def _verify_all(
    message: bytes, sigs: list[_Sig], keys: dict[str, KeyAnswer], minkey: int
) -> list[DKIMOutcome]:
    dnsfunc = make_dnsfunc(keys)
    outcomes: list[DKIMOutcome] = []
    try:
        verifier = dkimpy.DKIM(message, logger=_dkimpy_log, minkey=minkey)
    except Exception as exc:  # dkimpy refuses header lines that are not fields
        reason = f"malformed header section: {type(exc).__name__}"
        for sig in sigs:
            tags = sig.tags
            domain = _text(tags, b"d").lower()
            outcomes.append(
                DKIMOutcome(
                    "neutral",
                    domain,
                    _text(tags, b"s"),
                    _text(tags, b"a").lower(),
                    _text(tags, b"i", f"@{domain}" if domain else ""),
                    "".join(_text(tags, b"b").split())[:12],
                    reason,
                )
            )
        return outcomes
    for sig in sigs:
        tags = sig.tags
        domain = _text(tags, b"d").lower()
        selector = _text(tags, b"s")
        algorithm = _text(tags, b"a").lower()
        identity = _text(tags, b"i", f"@{domain}" if domain else "")
        b_prefix = "".join(_text(tags, b"b").split())[:12]

        def outcome(
            result: str,
            reason: str,
            domain: str = domain,
            selector: str = selector,
            algorithm: str = algorithm,
            identity: str = identity,
            b_prefix: str = b_prefix,
        ) -> DKIMOutcome:
            return DKIMOutcome(result, domain, selector, algorithm, identity, b_prefix, reason)

        if tags is None:
            outcomes.append(outcome("neutral", sig.error))
            continue
        if algorithm == "rsa-sha1":
            # RFC 8301 3.1: verifiers MUST NOT consider rsa-sha1 signatures valid.
            outcomes.append(outcome("policy", "rsa-sha1 is not accepted (RFC 8301)"))
            continue
        if algorithm not in ("rsa-sha256", "ed25519-sha256"):
            outcomes.append(outcome("neutral", f"unknown algorithm {algorithm!r}"))
            continue
        name = _key_name(tags.get(b"s", b""), tags.get(b"d", b""))
        if name is None:
            outcomes.append(outcome("neutral", "bad s= or d="))
            continue
        answer = keys.get(name, KeyAnswer())
        if answer.temperror is not None:
            outcomes.append(outcome("temperror", f"key lookup failed: {answer.temperror}"))
            continue
        record = dnsfunc(name)
        if record is None:
            outcomes.append(outcome("permerror", f"no key at {name}"))
            continue
        try:
            dkimpy.evaluate_pk(name.encode(), record)
        except dkimpy.DKIMException as exc:
            outcomes.append(outcome("permerror", f"unusable key at {name}: {exc}"))
            continue
        except Exception as exc:  # a malformed key must not take verification down
            outcomes.append(outcome("permerror", f"unusable key at {name}: {exc}"))
            continue
        try:
            ok = verifier.verify(idx=sig.index, dnsfunc=dnsfunc)
        except dkimpy.KeyFormatError as exc:
            outcomes.append(outcome("policy", str(exc)))
            continue
        except dkimpy.ValidationError as exc:
            text = str(exc)
            if text.startswith("body hash mismatch"):
                text = "body hash mismatch: the body changed after signing"
            outcomes.append(outcome("fail", text))
            continue
        except dkimpy.DKIMException as exc:
            outcomes.append(outcome("neutral", str(exc)))
            continue
        except Exception as exc:  # dkimpy on hostile input: report, never crash the session
            log.warning("dkim verifier error on signature %d: %r", sig.index, exc)
            outcomes.append(outcome("permerror", f"verifier error: {type(exc).__name__}"))
            continue
        checked = getattr(verifier, "signature_fields", {}) or {}
        if _squeeze(checked.get(b"b")) != _squeeze(tags.get(b"b")) or _squeeze(
            checked.get(b"d")
        ) != _squeeze(tags.get(b"d")):
            # Our header split and dkimpy's must agree on which field is signature number i;
            # never report one signature's result under another's d=.
            outcomes.append(outcome("permerror", "signature could not be matched to its field"))
            continue
        if ok and b"l" in tags and _unsigned_tail(verifier, tags):
            # RFC 6376 8.2: with l= shorter than the body, anyone may append content.
            outcomes.append(outcome("policy", "l= leaves part of the body unsigned"))
            continue
        if ok:
            outcomes.append(outcome("pass", f"signature by {domain} verified"))
        else:
            outcomes.append(outcome("fail", "signature did not verify"))
    return outcomes


async def verify_dkim(
    dns: AuthDNS, message: bytes, *, minkey: int = MIN_RSA_BITS
) -> list[DKIMOutcome]:
    """Verify every DKIM-Signature (up to ``MAX_SIGNATURES``), topmost first.

    An empty list means the message is not signed (Authentication-Results ``dkim=none``).
    """
    sigs = _signatures(message)
    if not sigs:
        return []
    names = [
        n
        for s in sigs
        if s.tags is not None
        and (n := _key_name(s.tags.get(b"s", b""), s.tags.get(b"d", b""))) is not None
    ]
    keys = await prefetch_keys(dns, names)
    return await asyncio.to_thread(_verify_all, message, sigs, keys, minkey)


# -- signing ------------------------------------------------------------------------------------


def _include_headers(message: bytes) -> list[bytes]:
    """Recommended fields present in the message, plus one extra From (oversigning)."""
    fields, _ = split_message(message)
    wanted = set(SIGNED_HEADERS)
    present = [f.name.encode("ascii") for f in fields if f.name.encode("ascii") in wanted]
    extra = [name for name in FROZEN_HEADERS if name in present]
    return present + extra


def sign_message(message: bytes, keys: Sequence[DkimKey]) -> bytes:
    """DKIM-Signature fields to prepend, one per key (RSA's on top, then Ed25519's).

    Uses relaxed/relaxed canonicalization (RFC 6376 3.4): it survives the header refolding and
    trailing-whitespace changes of relays. Keys of another algorithm than ed25519/rsa are
    skipped with a warning.
    """
    include = _include_headers(message)
    if b"from" not in include:
        raise ValueError("cannot DKIM-sign a message without a From field (RFC 6376 5.4)")
    ordered = sorted(keys, key=lambda k: 0 if k.algorithm == "rsa" else 1)
    out: list[bytes] = []
    for key in ordered:
        signer = dkimpy.DKIM(
            message, logger=_dkimpy_log, signature_algorithm=key.signature_algorithm
        )
        header: bytes = signer.sign(
            key.selector.encode("ascii"),
            key.domain.encode("ascii"),
            key.dkimpy_private_key(),
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=include,
        )
        if not header.endswith(b"\r\n"):
            header = header.rstrip(b"\r\n") + b"\r\n"
        out.append(header)
    return b"".join(out)
