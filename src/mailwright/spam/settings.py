"""The `[spam]` table: typed, validated settings of the spam defence (stdlib only).

`config.py` validates the table through `SpamSettings.from_mapping` when the configuration loads,
so a mistake is one line naming the key, before anything starts. Everything has a default that
is safe on the open Internet: block lists only when the operator names them, greylisting off,
rejection only for scores far above the junk threshold.

```toml
[spam]
dnsbl = ["zen.spamhaus.org"]            # RFC 5782 block lists for the client address
dnswl = ["list.dnswl.org"]              # allow lists (lower the score, skip greylisting)
greet_wait = "0s"                       # pregreet test: silence expected before the greeting
greylist = false
junk_threshold = 5.0                    # score at which mail goes to the Junk mailbox
reject_threshold = 15.0                 # score at which mail is refused at the end of DATA
[spam.domains."example.org"]            # per recipient domain: same keys as below
junk_threshold = 4.0
[spam.accounts."boss@example.org"]      # per account: enabled, junk_threshold, reject_threshold
reject_threshold = 0                    # 0 = never refuse mail for this account
```
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["BlockList", "SpamConfigError", "SpamSettings", "Thresholds"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

# Answer codes of well-known lists (each list's own documentation), so `dnsbl = ["zen..."]`
# gives a useful reason without configuration. RFC 5782 2.3 leaves the meaning to each list.
KNOWN_CODES: dict[str, dict[str, str]] = {
    "zen.spamhaus.org": {
        "127.0.0.2": "SBL: direct spam source",
        "127.0.0.3": "CSS: snowshoe spam source",
        "127.0.0.4": "XBL: exploited host",
        "127.0.0.5": "XBL: exploited host",
        "127.0.0.6": "XBL: exploited host",
        "127.0.0.7": "XBL: exploited host",
        "127.0.0.9": "DROP: hijacked network",
        "127.0.0.10": "PBL: end-user address range (ISP policy)",
        "127.0.0.11": "PBL: end-user address range (Spamhaus)",
    },
    "bl.spamcop.net": {"127.0.0.2": "reported spam source"},
    "b.barracudacentral.org": {"127.0.0.2": "poor reputation"},
}

# Greylisting skips clients whose forward-confirmed reverse DNS name is in one of these
# domains: large senders retry from other addresses, so greylisting only delays them.
DEFAULT_GREYLIST_ALLOW = (
    "google.com",
    "outlook.com",
    "yahoo.com",
    "yahoodns.net",
    "apple.com",
    "icloud.com",
    "amazonses.com",
    "sendgrid.net",
    "mcsv.net",
    "rsgsv.net",
    "mailgun.net",
    "facebook.com",
    "linkedin.com",
    "messagingengine.com",
    "protonmail.ch",
    "zoho.com",
    "gmx.net",
    "web.de",
)


class SpamConfigError(ValueError):
    """A bad `[spam]` value; `str()` names the key."""


@dataclass(frozen=True, slots=True)
class BlockList:
    """One DNS list zone (RFC 5782) and what its answers mean."""

    zone: str
    codes: Mapping[str, str] = field(default_factory=dict)  # answer address -> reason
    score: float = 0.0  # 0 = refuse the connection (block lists) / the default bonus (allow)
    allow: bool = False

    def reason(self, answer: str) -> str:
        return self.codes.get(answer) or f"listed ({answer})"


@dataclass(frozen=True, slots=True)
class Thresholds:
    enabled: bool = True
    junk: float = 5.0
    reject: float = 15.0  # 0 = never refuse


@dataclass(frozen=True, slots=True)
class SpamSettings:
    enabled: bool = True
    dnsbl: tuple[BlockList, ...] = ()
    dnswl: tuple[BlockList, ...] = ()
    greet_wait: float = 0.0
    greylist: bool = False
    greylist_delay: float = 300.0
    greylist_expire: float = 36 * 3600.0
    greylist_allow: tuple[str, ...] = DEFAULT_GREYLIST_ALLOW
    greylist_networks: tuple[str, ...] = ()
    sender_rate: int = 500  # accepted recipients per envelope sender per hour; 0 = off
    client_rate: int = 1000  # accepted recipients per client network per hour; 0 = off
    rate_exempt: tuple[str, ...] = ("127.0.0.0/8", "::1/128")  # trusted relays, local tools
    thresholds: Thresholds = Thresholds()
    domains: Mapping[str, Thresholds] = field(default_factory=dict)
    accounts: Mapping[str, Thresholds] = field(default_factory=dict)
    learn: bool = True  # train from moves into/out of Junk and $Junk/$NotJunk
    learn_interval: float = 30.0
    max_scan_bytes: int = 512 * 1024
    rspamd_url: str = ""  # e.g. http://127.0.0.1:11333
    spamd: str = ""  # host:port of SpamAssassin's spamd
    external_timeout: float = 10.0

    def thresholds_for(self, address: str) -> Thresholds:
        """The account's settings, else its domain's, else the server's."""
        address = address.lower()
        if address in self.accounts:
            return self.accounts[address]
        domain = address.rpartition("@")[2]
        return self.domains.get(domain, self.thresholds)

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any] | None) -> SpamSettings:
        return _parse(dict(table or {}))


def _duration(key: str, value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise SpamConfigError(f"spam.{key}: expected a duration such as \"30s\" or \"5m\"")


def _number(key: str, value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise SpamConfigError(f"spam.{key}: expected a number")


def _count(key: str, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise SpamConfigError(f"spam.{key}: expected an integer >= 0")


def _bool(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise SpamConfigError(f"spam.{key}: expected true or false")


def _zone_name(key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip(".") or " " in value:
        raise SpamConfigError(f"spam.{key}: expected a DNS zone name")
    return value.strip(".").lower()


def _lists(key: str, value: object, *, allow: bool) -> tuple[BlockList, ...]:
    if not isinstance(value, list):
        raise SpamConfigError(f"spam.{key}: expected a list of zones")
    out: list[BlockList] = []
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        if isinstance(item, str):
            zone = _zone_name(where, item)
            out.append(BlockList(zone, dict(KNOWN_CODES.get(zone, {})), 0.0, allow))
            continue
        if not isinstance(item, dict):
            raise SpamConfigError(f"spam.{where}: expected a zone or a table")
        unknown = set(item) - {"zone", "codes", "score"}
        if unknown:
            raise SpamConfigError(f"spam.{where}.{sorted(unknown)[0]}: unknown key")
        zone = _zone_name(f"{where}.zone", item.get("zone"))
        codes = item.get("codes", KNOWN_CODES.get(zone, {}))
        if not isinstance(codes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in codes.items()
        ):
            raise SpamConfigError(f"spam.{where}.codes: expected a table of address = reason")
        for answer in codes:
            try:
                ipaddress.IPv4Address(answer)
            except ValueError:
                raise SpamConfigError(
                    f"spam.{where}.codes: {answer!r} is not an IPv4 address"
                ) from None
        score = _number(f"{where}.score", item.get("score", 0.0))
        out.append(BlockList(zone, dict(codes), score, allow))
    return tuple(out)


def _thresholds(key: str, table: object, base: Thresholds) -> Thresholds:
    if not isinstance(table, dict):
        raise SpamConfigError(f"spam.{key}: must be a table")
    unknown = set(table) - {"enabled", "junk_threshold", "reject_threshold"}
    if unknown:
        raise SpamConfigError(f"spam.{key}.{sorted(unknown)[0]}: unknown key")
    t = base
    if "enabled" in table:
        t = replace(t, enabled=_bool(f"{key}.enabled", table["enabled"]))
    if "junk_threshold" in table:
        t = replace(t, junk=_number(f"{key}.junk_threshold", table["junk_threshold"]))
    if "reject_threshold" in table:
        t = replace(t, reject=_number(f"{key}.reject_threshold", table["reject_threshold"]))
    if t.reject and t.reject <= t.junk:
        raise SpamConfigError(f"spam.{key}.reject_threshold: must be above junk_threshold (or 0)")
    return t


def _parse(table: dict[str, Any]) -> SpamSettings:
    known = {f for f in SpamSettings.__dataclass_fields__} - {"thresholds"}
    known |= {"junk_threshold", "reject_threshold"}
    for key in table:
        if key not in known:
            raise SpamConfigError(f"spam.{key}: unknown key")
    s = SpamSettings()
    base = _thresholds(
        "",
        {k: v for k, v in table.items() if k in ("junk_threshold", "reject_threshold")},
        Thresholds(enabled=True),
    )
    kw: dict[str, Any] = {"thresholds": base}
    if "enabled" in table:
        kw["enabled"] = _bool("enabled", table["enabled"])
    if "dnsbl" in table:
        kw["dnsbl"] = _lists("dnsbl", table["dnsbl"], allow=False)
    if "dnswl" in table:
        kw["dnswl"] = _lists("dnswl", table["dnswl"], allow=True)
    for key in ("greet_wait", "greylist_delay", "greylist_expire", "learn_interval",
                "external_timeout"):  # fmt: skip
        if key in table:
            kw[key] = _duration(key, table[key])
    for key in ("greylist", "learn"):
        if key in table:
            kw[key] = _bool(key, table[key])
    for key in ("sender_rate", "client_rate", "max_scan_bytes"):
        if key in table:
            kw[key] = _count(key, table[key])
    if "greylist_allow" in table:
        allow = table["greylist_allow"]
        if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
            raise SpamConfigError("spam.greylist_allow: expected a list of domains")
        kw["greylist_allow"] = tuple(a.strip(".").lower() for a in allow)
    for key in ("greylist_networks", "rate_exempt"):
        if key in table:
            nets = table[key]
            if not isinstance(nets, list):
                raise SpamConfigError(f"spam.{key}: expected a list of networks")
            for n in nets:
                try:
                    ipaddress.ip_network(str(n), strict=False)
                except ValueError:
                    raise SpamConfigError(
                        f"spam.{key}: {n!r} is not an address or network"
                    ) from None
            kw[key] = tuple(str(n) for n in nets)
    for key in ("rspamd_url", "spamd"):
        if key in table:
            value = table[key]
            if not isinstance(value, str):
                raise SpamConfigError(f"spam.{key}: expected a string")
            kw[key] = value
    if kw.get("rspamd_url") and not str(kw["rspamd_url"]).startswith("http://"):
        raise SpamConfigError("spam.rspamd_url: expected http://host:port")
    if kw.get("spamd") and ":" not in str(kw["spamd"]):
        raise SpamConfigError("spam.spamd: expected host:port")
    for key in ("domains", "accounts"):
        if key in table:
            sub = table[key]
            if not isinstance(sub, dict):
                raise SpamConfigError(f"spam.{key}: must be a table")
            kw[key] = {
                str(name).lower(): _thresholds(f"{key}.{name}", value, base)
                for name, value in sub.items()
            }
    return replace(s, **kw)
