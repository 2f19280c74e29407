"""The administrator's spam settings: `[spam]` of the configuration is the base, and the web
administration (/admin/spam) overrides some of its keys, server-wide or per recipient domain.

Overrides live in the store (`SpamOverrides.spam_overrides`: (scope, key) -> the value's JSON,
scope "" for the server, else a domain), so every worker process and every node sharing a
PostgreSQL database applies the same ones: `SpamFilter.refresh` reads them again at most every
`REFRESH_SECONDS` (and at once in the process that saved them), without a restart. The merged
table goes through `SpamSettings.from_mapping`, the one validation the configuration uses, so a
value the configuration file would refuse is refused here too, with the same message.

Only the keys of `EDITABLE` (and `DOMAIN_EDITABLE` per domain) can be overridden: the engines'
addresses, the learning loop and the pregreet wait stay in the configuration file.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .settings import SpamConfigError, SpamSettings

__all__ = ["DOMAIN_EDITABLE", "EDITABLE", "Field", "FormError", "effective", "merged_table",
           "parse_field", "render_value", "source_of"]

REFRESH_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Field:
    key: str  # the [spam] key
    label: str  # the form's accessible name
    kind: str  # number, count, bool, duration, zones, domains, networks
    help: str


EDITABLE: tuple[Field, ...] = (
    Field("junk_threshold", "Junk threshold", "number",
          "score at which a message goes to the Junk mailbox"),
    Field("reject_threshold", "Reject threshold", "number",
          "score at which a message is refused at the end of DATA (0: never)"),
    Field("dnsbl", "DNS block lists", "zones",
          "RFC 5782 zones queried for the client's address, one per line"),
    Field("dnswl", "DNS allow lists", "zones",
          "zones that lower the score and skip greylisting, one per line"),
    Field("greylist", "Greylisting", "bool",
          "answer a new client, sender and recipient with 451 once"),
    Field("greylist_delay", "Greylisting delay", "duration",
          "how long a new triplet must wait, e.g. 5m"),
    Field("greylist_allow", "Greylisting allow-list (domains)", "domains",
          "clients whose confirmed reverse DNS name is in these domains skip greylisting"),
    Field("greylist_networks", "Greylisting allow-list (networks)", "networks",
          "client networks that skip greylisting, one per line"),
    Field("sender_rate", "Recipients per sender per hour", "count",
          "accepted recipients per envelope sender per hour (0: no limit)"),
    Field("client_rate", "Recipients per client network per hour", "count",
          "accepted recipients per client network per hour (0: no limit)"),
    Field("rate_exempt", "Rate limit exemptions", "networks",
          "networks the rate limits do not apply to, one per line"),
)
DOMAIN_EDITABLE: tuple[Field, ...] = (
    Field("enabled", "Spam filtering", "bool", "filter mail for this domain"),
    Field("junk_threshold", "Junk threshold", "number", "as above, for this domain"),
    Field("reject_threshold", "Reject threshold", "number", "as above, for this domain (0: never)"),
)
_FIELDS = {f.key: f for f in EDITABLE}
_DOMAIN_FIELDS = {f.key: f for f in DOMAIN_EDITABLE}
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*"
                     r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MAX_ITEMS = 200


class FormError(ValueError):
    """A value typed into the form that cannot be used; `str()` says which and why."""


def field_for(scope: str, key: str) -> Field:
    table = _DOMAIN_FIELDS if scope else _FIELDS
    if key not in table:
        raise FormError(f"{key} cannot be changed here")
    return table[key]


def parse_field(scope: str, key: str, text: str) -> Any:
    """The value of a form field as the `[spam]` table would hold it; FormError otherwise."""
    f = field_for(scope, key)
    text = text.strip()
    if f.kind == "bool":
        if text.lower() in ("on", "true", "yes", "1"):
            return True
        if text.lower() in ("", "off", "false", "no", "0"):
            return False
        raise FormError(f"{f.label}: expected on or off")
    if f.kind in ("number", "count"):
        try:
            number = float(text)
        except ValueError:
            raise FormError(f"{f.label}: {text!r} is not a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise FormError(f"{f.label}: {text!r} is not a number")
        if f.kind == "count":
            if number < 0 or number != int(number):
                raise FormError(f"{f.label}: expected a whole number, 0 or more")
            return int(number)
        return round(number, 2)
    if f.kind == "duration":
        if not re.fullmatch(r"\d+(\.\d+)?[smhd]?", text):
            raise FormError(f"{f.label}: expected a duration such as 30s, 5m or 1h")
        return text
    items = [i.strip() for i in re.split(r"[\s,]+", text) if i.strip()]
    if len(items) > MAX_ITEMS:
        raise FormError(f"{f.label}: at most {MAX_ITEMS} entries")
    if f.kind in ("zones", "domains"):
        out = []
        for item in items:
            name = item.strip(".").lower()
            if not _DOMAIN.match(name):
                raise FormError(f"{f.label}: {item!r} is not a DNS name")
            out.append(name)
        return out
    for item in items:  # networks
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise FormError(f"{f.label}: {item!r} is not an address or network") from None
    return items


def render_value(key: str, value: Any) -> str:
    """A `[spam]` value as the form shows it."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return "\n".join(str(v["zone"]) if isinstance(v, dict) else str(v) for v in value)
    return "" if value is None else str(value)


def merged_table(config: Mapping[str, Any], overrides: Mapping[tuple[str, str], str]) -> dict[str, Any]:
    """`[spam]` with the overrides applied (per-domain ones into `domains.<name>`)."""
    table: dict[str, Any] = dict(config)
    domains = {str(k): dict(v) for k, v in dict(table.get("domains") or {}).items()}
    for (scope, key), text in sorted(overrides.items()):
        value = json.loads(text)
        if scope:
            domains.setdefault(scope, {})[key] = value
        else:
            table[key] = value
    if domains:
        table["domains"] = domains
    return table


def effective(config: Mapping[str, Any], overrides: Mapping[tuple[str, str], str]) -> SpamSettings:
    """The settings in force; SpamConfigError (naming the key) if the overrides make them
    invalid (the caller keeps the previous ones)."""
    return SpamSettings.from_mapping(merged_table(config, overrides))


def source_of(config: Mapping[str, Any], overrides: Mapping[tuple[str, str], str],
              scope: str, key: str) -> str:
    """Where a value comes from: "admin", "config" or "default"."""
    if (scope, key) in overrides:
        return "admin"
    table = dict(config.get("domains") or {}).get(scope, {}) if scope else config
    return "config" if key in (table or {}) else "default"


def current_value(settings: SpamSettings, scope: str, key: str) -> Any:
    """A key's value in force, as the `[spam]` table would spell it."""
    if scope:
        t = settings.domains.get(scope, settings.thresholds)
        return {"enabled": t.enabled, "junk_threshold": t.junk,
                "reject_threshold": t.reject}[key]
    if key == "junk_threshold":
        return settings.thresholds.junk
    if key == "reject_threshold":
        return settings.thresholds.reject
    if key in ("dnsbl", "dnswl"):
        return [b.zone for b in getattr(settings, key)]
    if key == "greylist_delay":
        return _seconds(settings.greylist_delay)
    value = getattr(settings, key)
    return list(value) if isinstance(value, tuple) else value


def _seconds(value: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size and value % size == 0:
            return f"{int(value // size)}{unit}"
    return f"{value:g}s"


def check(config: Mapping[str, Any], overrides: Mapping[tuple[str, str], str]) -> None:
    """FormError when the overrides would make invalid settings (the configuration's rule)."""
    try:
        effective(config, overrides)
    except SpamConfigError as exc:
        raise FormError(str(exc)) from None
