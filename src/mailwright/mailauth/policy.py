"""Per-domain settings for message authentication, with safe defaults.

The defaults follow what a careful receiver does (RFC 7489 section 6.7 leaves the final choice to
the receiver): verify everything, honour the sender's DMARC policy, deliver ``p=quarantine``
failures to the recipient's Junk mailbox, refuse ``p=reject`` failures at the end of DATA, and
answer with a temporary error when DNS failures hide the outcome.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = [
    "Action",
    "DomainAuthPolicy",
    "MailauthSettings",
    "PolicyError",
]


class PolicyError(ValueError):
    """A mailauth setting has a value we cannot use; the message names the key."""


class Action(enum.Enum):
    """What the SMTP session does with a message after authentication."""

    ACCEPT = "accept"
    QUARANTINE = "quarantine"  # deliver, but into the Junk mailbox
    REJECT = "reject"  # 550 5.7.1 at the end of DATA
    TEMPFAIL = "tempfail"  # 451 4.7.0: DNS failures hide the outcome, the sender retries


@dataclass(frozen=True, slots=True)
class DomainAuthPolicy:
    """Settings for mail arriving for one local domain (or the default for all)."""

    #: Run SPF, DKIM, DMARC and ARC at all. Off: the message is accepted with an
    #: Authentication-Results header saying nothing was checked (attacker headers still removed).
    verify: bool = True
    #: Apply the sender domain's DMARC policy (p=/sp=, pct=). Off: results are only reported.
    dmarc_enforce: bool = True
    #: Action for a DMARC failure whose published policy is p=reject. "quarantine" softens it.
    on_dmarc_reject: Action = Action.REJECT
    #: Action for a DMARC failure whose published policy is p=quarantine.
    on_dmarc_quarantine: Action = Action.QUARANTINE
    #: Action when DNS trouble (temperror) hides whether DMARC would pass; RFC 7489 6.6.3
    #: lets the receiver defer, which is safer than guessing.
    on_dmarc_temperror: Action = Action.TEMPFAIL
    #: Action for SPF "fail" of the MAIL FROM when DMARC does not decide the message. RFC 7489
    #: section 10.1 advises against rejecting on SPF alone before DMARC, so accept is the default.
    on_spf_fail: Action = Action.ACCEPT
    #: Action for a message with several From addresses (RFC 7489 6.6.1), a classic way to
    #: show one domain to the user and authenticate another.
    on_multiple_from: Action = Action.REJECT
    #: Mailbox that receives quarantined mail (the account's Junk special-use mailbox).
    quarantine_mailbox: str = "Junk"
    #: ARC sealers (d= of the newest ARC-Seal) whose passing chain overrides a DMARC failure,
    #: e.g. a mailing list host the operator trusts (RFC 8617 section 7.2 local policy).
    trusted_arc_sealers: tuple[str, ...] = ()
    #: Sign outgoing mail of this domain with its DKIM keys (when keys exist).
    dkim_sign: bool = True

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str = "mailauth") -> DomainAuthPolicy:
        """Build a policy from a TOML table, naming the offending key on error."""
        return _apply(cls(), data, where)


def _apply(base: DomainAuthPolicy, data: Mapping[str, Any], where: str) -> DomainAuthPolicy:
    known = {f.name for f in fields(DomainAuthPolicy)}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise PolicyError(f"{where}: unknown key {key!r}")
        current = getattr(base, key)
        if isinstance(current, bool):
            if not isinstance(value, bool):
                raise PolicyError(f"{where}.{key}: expected true or false")
            changes[key] = value
        elif isinstance(current, Action):
            try:
                changes[key] = Action(str(value).lower())
            except ValueError:
                choices = ", ".join(a.value for a in Action)
                raise PolicyError(f"{where}.{key}: expected one of {choices}") from None
        elif isinstance(current, str):
            if not isinstance(value, str) or not value:
                raise PolicyError(f"{where}.{key}: expected a non-empty string")
            changes[key] = value
        elif isinstance(current, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise PolicyError(f"{where}.{key}: expected a list of strings")
            changes[key] = tuple(v.lower().rstrip(".") for v in value)
    return replace(base, **changes)


@dataclass(frozen=True, slots=True)
class MailauthSettings:
    """The ``[mailauth]`` table: a default policy and per-domain overrides.

    TOML shape::

        [mailauth]
        dmarc_enforce = true
        [mailauth.domains."example.org"]
        on_dmarc_reject = "quarantine"
    """

    default: DomainAuthPolicy = field(default_factory=DomainAuthPolicy)
    domains: Mapping[str, DomainAuthPolicy] = field(default_factory=dict)

    def for_domain(self, domain: str) -> DomainAuthPolicy:
        """The policy of a local domain (case-insensitive), else the default."""
        return self.domains.get(domain.lower().rstrip("."), self.default)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> MailauthSettings:
        """Parse the ``[mailauth]`` table; per-domain tables inherit the top-level keys."""
        top = {k: v for k, v in data.items() if k != "domains"}
        default = _apply(DomainAuthPolicy(), top, "mailauth")
        raw_domains = data.get("domains", {})
        if not isinstance(raw_domains, Mapping):
            raise PolicyError("mailauth.domains: expected a table of domain tables")
        domains: dict[str, DomainAuthPolicy] = {}
        for name, table in raw_domains.items():
            where = f'mailauth.domains."{name}"'
            if not isinstance(table, Mapping):
                raise PolicyError(f"{where}: expected a table")
            domains[str(name).lower().rstrip(".")] = _apply(default, table, where)
        return cls(default=default, domains=domains)
