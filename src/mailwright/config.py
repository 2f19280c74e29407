"""Typed configuration, loaded from TOML and validated in full before anything starts.

Every problem is reported as a `ConfigError` naming the file and the dotted key, so the CLI can
print one plain line and exit 2 instead of failing later with a traceback.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROTOCOLS: dict[str, int] = {
    "smtp": 25,
    "submission": 587,
    "submissions": 465,
    "imap": 143,
    "imaps": 993,
    "pop3": 110,
    "pop3s": 995,
    "http": 8080,
    "managesieve": 4190,
    "https": 443,
}
IMPLICIT_TLS = frozenset({"submissions", "imaps", "pop3s", "https"})

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?i?b?)\s*$", re.IGNORECASE)


class ConfigError(Exception):
    """A configuration problem; `str()` is the one line shown to the operator."""

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source = source
        self.key = key
        self.message = message
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {message}")


def parse_duration(value: object) -> float:
    """Seconds from `30`, `"90s"`, `"5m"`, `"4h"`, `"5d"`."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as \"5m\"")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("duration must not be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("expected a duration such as \"5m\"")
    m = _DURATION.match(value)
    if not m:
        raise ValueError(f"invalid duration {value!r} (use s, m, h or d suffixes)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_size(value: object) -> int:
    """Bytes from `1024`, `"50M"`, `"1GiB"`, `"512k"`."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as \"50M\"")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("size must not be negative")
        return value
    if not isinstance(value, str):
        raise ValueError("expected a size such as \"50M\"")
    m = _SIZE.match(value)
    if not m:
        raise ValueError(f"invalid size {value!r}")
    mult = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2)[:1].lower()]
    return int(m.group(1)) * mult


@dataclass(frozen=True, slots=True)
class ServerConfig:
    hostname: str
    data_dir: Path
    log_level: str = "info"
    log_format: str = "text"
    user: str = ""  # when started as root: drop to this user once the ports are bound
    group: str = ""  # default: the user's primary group
    # worker processes serving every listener (docs/architecture.md "Processes"); 0 = one per
    # core; 1 = the single process of old, no supervisor
    workers: int = 0


@dataclass(frozen=True, slots=True)
class TLSConfig:
    cert: Path | None
    key: Path | None
    # A direct client on this host's loopback may log in with a plaintext password without
    # TLS (webmail, a local fetchmail); false requires TLS from everybody.
    allow_plaintext_loopback: bool = True
    # certificates for [server] hostname and [acme] names come from the [acme] server
    acme: bool = False


@dataclass(frozen=True, slots=True)
class AcmeConfig:
    """RFC 8555 certificate issuance; `cert`/`key` of [tls] serve until the first issuance."""

    directory: str = ""  # directory URL; "" = no ACME
    email: str = ""  # account contact (RFC 8555 7.3)
    ca_file: Path | None = None  # trusts the ACME server's own TLS (test CAs)
    names: tuple[str, ...] = ()  # more names on the certificate besides [server] hostname
    challenge: str = "tls-alpn-01"  # preferred: "tls-alpn-01" or "http-01"
    # how often the renewal loop wakes up to look at the certificate's age
    check_interval: float = 3600.0


@dataclass(frozen=True, slots=True)
class MtaStsConfig:
    """The MTA-STS policy the https listener serves (RFC 8461 3.2)."""

    mode: str = "testing"  # enforce, testing or none
    max_age: float = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The web interface on the `https` listener (webmail, account, administration)."""

    session_lifetime: float = 12 * 3600.0  # a browser signs in again after this long
    max_request: int = 32 * 1024 * 1024  # largest request body (uploads), bytes
    # a keep-alive connection with no request, or a request whose client stops sending, is
    # closed after this long (web/asgi.py)
    idle_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class StorageConfig:
    backend: str = "sqlite"
    dsn: str = ""
    fsync: bool = True
    min_free: int = 64 * 1024 * 1024
    # where message content lives: "files" (fsync'ed, in data_dir) or "database" (PostgreSQL
    # bytea behind a node-local cache, for nodes that share no file system)
    blobs: str = "files"


@dataclass(frozen=True, slots=True)
class DNSConfig:
    nameservers: tuple[tuple[str, int], ...] = ()
    timeout: float = 5.0
    # "trust-ad": the nameservers are trusted validating resolvers (on loopback or over a
    # secured path) whose AD bit says an answer is DNSSEC-authenticated (RFC 6840 5.7); DANE
    # (RFC 7672) is used only then. "validate": DNSSEC is validated in-process from
    # `trust_anchors` / `trust_anchor_file` (default: the root zone's KSKs) for the lookups DANE
    # needs. "off": no answer is taken as authenticated.
    dnssec: str = "off"
    trust_anchors: tuple[str, ...] = ()  # DS or DNSKEY records, "NAME IN DS ..."
    trust_anchor_file: str = ""


@dataclass(frozen=True, slots=True)
class OutboundConfig:
    port: int = 25
    retry_schedule: tuple[float, ...] = (60, 300, 900, 1800, 3600, 7200, 14400)
    max_age: float = 5 * 86400
    delay_warning: float = 4 * 3600
    max_per_domain: int = 4
    max_connections: int = 50
    require_tls: bool = False
    verify_certificates: bool = False
    lease: float = 900.0  # how long a node owns a claimed queue entry (another takes it after)
    # where reports go that cannot be delivered themselves (RFC 5321 6.1); "" = postmaster@ the
    # first local domain
    double_bounce_recipient: str = ""
    # Outbound TLS policy (docs/transport.md): a private CA trusted besides the system store,
    # MTA-STS (RFC 8461) and DANE (RFC 7672) on or off, and TLS-RPT (RFC 8460) reports.
    ca_file: str = ""
    mta_sts: bool = True
    dane: bool = True
    tls_reports: bool = True
    tls_report_contact: str = ""  # contact-info of our reports; "" = postmaster@ hostname


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    max_message_size: int = 50 * 1024 * 1024
    max_recipients: int = 100  # RFC 5321 4.5.3.1.8 asks for at least 100
    max_connections: int = 10000
    max_connections_per_ip: int = 50
    commands_per_second: float = 50.0
    # networks whose commands are never rate-limited (net/limits.py): webmail, trusted relays
    rate_limit_exempt: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    idle_timeout: float = 300.0
    imap_idle_timeout: float = 1800.0
    auth_failures_before_ban: int = 10
    auth_ban_time: float = 900.0
    default_quota: int = 0  # bytes, 0 = unlimited
    # implicit TLS and STARTTLS: a client that does not finish its handshake in time is dropped
    tls_handshake_timeout: float = 10.0
    # submission, IMAP, POP3: a session not logged in this long after connecting is hung up on
    login_timeout: float = 60.0
    # failed logins from one address, over every account, before the address is refused at connect
    auth_address_failures_before_ban: int = 50
    auth_failure_delay: float = 0.5  # the first failure's delay; it doubles per failure
    auth_max_failure_delay: float = 5.0


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """Per special-use/mailbox-name retention in days; 0 keeps forever."""

    rules: tuple[tuple[str, int], ...] = (("Trash", 30), ("Junk", 30))
    interval: float = 3600.0
    trace_days: int = 30  # message trace events kept this long; 0 keeps them forever


@dataclass(frozen=True, slots=True)
class SieveConfig:
    """Sieve filtering at local delivery and the ManageSieve quotas (docs/sieve.md)."""

    before: Path | None = None  # the administrator's script run before each user's
    after: Path | None = None  # ... and after it
    global_dir: Path | None = None  # scripts `include :global` may name
    max_script_size: int = 128 * 1024  # ManageSieve quota per script (RFC 5804 1.3 QUOTA)
    max_scripts: int = 32  # scripts per account
    max_actions: int = 64
    max_redirects: int = 4
    max_run_time: float = 5.0  # seconds of interpreter time per delivery
    vacation_min_period: float = 86400.0  # RFC 5230 4.1: at least one day, unless lowered
    vacation_max_period: float = 90 * 86400.0
    spam_score_header: str = "X-Spam-Score"  # spamtest input (RFC 5235)
    spam_status_header: str = "X-Spam-Status"
    spam_max_score: float = 10.0
    virus_score_header: str = "X-Virus-Score"


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    protocol: str
    address: str
    port: int
    proxy_protocol: bool = False
    proxy_trusted: tuple[str, ...] = ()
    # connections this listener may hold; 0 = an equal share of [limits] max_connections
    max_connections: int = 0

    @property
    def implicit_tls(self) -> bool:
        return self.protocol in IMPLICIT_TLS

    @property
    def name(self) -> str:
        return f"{self.protocol}@{self.address}:{self.port}"


@dataclass(frozen=True, slots=True)
class SRSConfig:
    """[srs]: envelope-sender rewriting of forwarded mail (docs/forwarding.md)."""

    enabled: bool = True
    secret: str = ""  # empty: generated into <data_dir>/srs.secret (mode 0600)
    old_secrets: tuple[str, ...] = ()  # still accepted for bounces after a secret change
    max_age: float = 21 * 86400.0


@dataclass(frozen=True, slots=True)
class DMARCReportConfig:
    """[dmarc]: aggregate reports sent (RFC 7489 7.2) and received (docs/forwarding.md)."""

    send_reports: bool = True
    report_address: str = ""  # where reports sent to us arrive; also the From of ours
    org_name: str = ""  # <org_name> in our reports; empty: the server hostname
    interval: float = 3600.0  # how often finished days are looked for (each is sent once)


@dataclass(frozen=True, slots=True)
class PasswordsConfig:
    """[passwords]: the argon2id cost of new password hashes (accounts/passwords.py). The
    default is RFC 9106 4's second recommended option; verifying reads the cost from the stored
    hash, so a change applies to passwords set afterwards."""

    hash_passes: int = 3
    hash_memory: int = 64 * 1024 * 1024  # bytes


@dataclass(frozen=True, slots=True)
class Config:
    source: Path
    server: ServerConfig
    tls: TLSConfig
    storage: StorageConfig
    dns: DNSConfig
    outbound: OutboundConfig
    limits: LimitsConfig
    retention: RetentionConfig
    listeners: tuple[ListenerConfig, ...]
    mailauth: dict[str, Any] = field(default_factory=dict)
    spam: dict[str, Any] = field(default_factory=dict)  # [spam], see mailwright.spam.settings
    srs: SRSConfig = field(default_factory=lambda: SRSConfig())
    dmarc: DMARCReportConfig = field(default_factory=lambda: DMARCReportConfig())
    sieve: SieveConfig = field(default_factory=SieveConfig)
    acme: AcmeConfig = field(default_factory=AcmeConfig)
    mtasts: MtaStsConfig = field(default_factory=MtaStsConfig)
    web: WebConfig = field(default_factory=WebConfig)
    passwords: PasswordsConfig = field(default_factory=PasswordsConfig)

    @property
    def base_dir(self) -> Path:
        return self.source.parent


def _networks(r: _Reader, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = r.get(name, list(default))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise r.error(name, "expected a list of addresses or networks")
    for v in value:
        try:
            ipaddress.ip_network(v, strict=False)
        except ValueError:
            raise r.error(name, f"{v!r} is not an address or network") from None
    return tuple(value)


class _Reader:
    """Walks one TOML table, remembering which keys were consumed so unknown ones are errors."""

    def __init__(self, source: str, prefix: str, table: object) -> None:
        self.source = source
        self.prefix = prefix
        if table is None:
            table = {}
        if not isinstance(table, dict):
            raise ConfigError(source, prefix, "must be a table")
        self.table: dict[str, Any] = table
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(self.source, self.key(name), message)

    def get(self, name: str, default: Any = None) -> Any:
        self.used.add(name)
        return self.table.get(name, default)

    def str_(self, name: str, default: str) -> str:
        v = self.get(name, default)
        if not isinstance(v, str):
            raise self.error(name, f"expected a string, got {type(v).__name__}")
        return v

    def bool_(self, name: str, default: bool) -> bool:
        v = self.get(name, default)
        if not isinstance(v, bool):
            raise self.error(name, f"expected true or false, got {v!r}")
        return v

    def int_(self, name: str, default: int, lo: int = 0, hi: int | None = None) -> int:
        v = self.get(name, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(name, f"expected an integer, got {v!r}")
        if v < lo or (hi is not None and v > hi):
            raise self.error(name, f"{v} is out of range" + (f" {lo}..{hi}" if hi else ""))
        return v

    def float_(self, name: str, default: float) -> float:
        v = self.get(name, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise self.error(name, f"expected a non-negative number, got {v!r}")
        return float(v)

    def duration(self, name: str, default: float | str) -> float:
        v = self.get(name, default)
        try:
            return parse_duration(v)
        except ValueError as e:
            raise self.error(name, str(e)) from None

    def size(self, name: str, default: int) -> int:
        v = self.get(name, default)
        try:
            return parse_size(v)
        except ValueError as e:
            raise self.error(name, str(e)) from None

    def path(self, name: str, default: str | None, base: Path) -> Path | None:
        v = self.get(name, default)
        if v is None or v == "":
            return None
        if not isinstance(v, str):
            raise self.error(name, "expected a path string")
        p = Path(v)
        return p if p.is_absolute() else base / p

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key")


def _hostport(source: str, key: str, value: object, default_port: int) -> tuple[str, int]:
    if not isinstance(value, str) or not value:
        raise ConfigError(source, key, f"expected \"host\" or \"host:port\", got {value!r}")
    host, port = value, default_port
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise ConfigError(source, key, f"invalid address {value!r}")
        host = value[1:end]
        rest = value[end + 1 :]
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ConfigError(source, key, f"invalid port in {value!r}")
            port = int(rest[1:])
    elif value.count(":") == 1:
        host, _, p = value.partition(":")
        if not p.isdigit():
            raise ConfigError(source, key, f"invalid port in {value!r}")
        port = int(p)
    if not 0 < port < 65536:
        raise ConfigError(source, key, f"port {port} out of range")
    return host, port


def _valid_hostname(name: str) -> bool:
    if not name or len(name) > 253:
        return False
    labels = name.rstrip(".").split(".")
    return all(re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", lab) for lab in labels)


def parse_config(data: dict[str, Any], source: Path) -> Config:
    src = str(source)
    base = source.parent
    top = _Reader(src, "", data)

    r = _Reader(src, "server", top.get("server"))
    hostname = r.str_("hostname", "localhost")
    if not _valid_hostname(hostname):
        raise r.error("hostname", f"{hostname!r} is not a valid host name")
    data_dir = r.path("data_dir", "data", base)
    assert data_dir is not None
    log_level = r.str_("log_level", "info").lower()
    if log_level not in ("debug", "info", "warning", "error"):
        raise r.error("log_level", "must be one of debug, info, warning, error")
    log_format = r.str_("log_format", "text")
    if log_format not in ("text", "json"):
        raise r.error("log_format", "must be \"text\" or \"json\"")
    user = r.str_("user", "")
    group = r.str_("group", "")
    if user:
        import pwd

        try:
            pwd.getpwnam(user)
        except KeyError:
            raise r.error("user", f"no such user {user!r}") from None
    if group:
        import grp

        if not user:
            raise r.error("group", "needs server.user")
        try:
            grp.getgrnam(group)
        except KeyError:
            raise r.error("group", f"no such group {group!r}") from None
    workers = r.int_("workers", 0, 0, 256)
    r.finish()
    server = ServerConfig(
        hostname.lower().rstrip("."), data_dir, log_level, log_format, user, group, workers
    )

    r = _Reader(src, "tls", top.get("tls"))
    tls = TLSConfig(
        r.path("cert", None, base), r.path("key", None, base),
        r.bool_("allow_plaintext_loopback", True), r.bool_("acme", False),
    )  # fmt: skip
    if (tls.cert is None) != (tls.key is None):
        raise r.error("cert" if tls.cert is None else "key", "cert and key must be set together")
    r.finish()

    r = _Reader(src, "acme", top.get("acme"))
    names_raw = r.get("names", [])
    if not isinstance(names_raw, list) or not all(isinstance(n, str) for n in names_raw):
        raise r.error("names", "expected a list of host names")
    for n in names_raw:
        if not _valid_hostname(n):
            raise r.error("names", f"{n!r} is not a valid host name")
    acme = AcmeConfig(
        directory=r.str_("directory", ""),
        email=r.str_("email", ""),
        ca_file=r.path("ca_file", "", base),
        names=tuple(n.lower().rstrip(".") for n in names_raw),
        challenge=r.str_("challenge", "tls-alpn-01"),
        check_interval=r.duration("check_interval", "1h"),
    )
    if acme.directory and not acme.directory.startswith(("https://", "http://")):
        raise r.error("directory", "expected an https:// URL")
    if acme.challenge not in ("tls-alpn-01", "http-01"):
        raise r.error("challenge", "must be \"tls-alpn-01\" or \"http-01\"")
    if acme.check_interval <= 0:
        raise r.error("check_interval", "must be positive")
    r.finish()
    if tls.acme and not acme.directory:
        raise ConfigError(src, "tls.acme", "needs [acme] directory")
    if tls.acme and (tls.cert is None or tls.key is None):
        raise ConfigError(src, "tls.acme", "needs [tls] cert and key (served until the first issuance)")

    r = _Reader(src, "mtasts", top.get("mtasts"))
    mtasts = MtaStsConfig(r.str_("mode", "testing"), r.duration("max_age", "7d"))
    if mtasts.mode not in ("enforce", "testing", "none"):
        raise r.error("mode", "must be \"enforce\", \"testing\" or \"none\"")
    # RFC 8461 3.2: max_age is at most 31557600 seconds
    if not 0 < mtasts.max_age <= 31557600:
        raise r.error("max_age", "must be between 1s and 31557600s (one year)")
    r.finish()

    r = _Reader(src, "storage", top.get("storage"))
    backend = r.str_("backend", "sqlite")
    if backend not in ("sqlite", "postgres"):
        raise r.error("backend", f"unknown backend {backend!r} (sqlite or postgres)")
    dsn = r.str_("dsn", "")
    if backend == "postgres" and not dsn:
        raise r.error("dsn", "required when backend = \"postgres\"")
    # PostgreSQL kept message content in the database before this key existed: that stays
    # its default, so an upgraded site still finds its messages
    blobs = r.str_("blobs", "database" if backend == "postgres" else "files")
    if blobs not in ("files", "database"):
        raise r.error("blobs", f"unknown blob storage {blobs!r} (files or database)")
    if blobs == "database" and backend != "postgres":
        raise r.error("blobs", "\"database\" needs backend = \"postgres\"")
    storage = StorageConfig(
        backend, dsn, r.bool_("fsync", True), r.size("min_free", 64 * 1024 * 1024), blobs
    )
    r.finish()

    r = _Reader(src, "dns", top.get("dns"))
    ns = r.get("nameservers", [])
    if not isinstance(ns, list):
        raise r.error("nameservers", "expected a list of \"host\" or \"host:port\"")
    nameservers = tuple(_hostport(src, f"dns.nameservers[{i}]", v, 53) for i, v in enumerate(ns))
    dnssec = r.str_("dnssec", "off")
    if dnssec not in ("off", "trust-ad", "validate"):
        raise r.error("dnssec", 'expected "off", "trust-ad" or "validate"')
    anchors_raw = r.get("trust_anchors", [])
    if not isinstance(anchors_raw, list) or not all(isinstance(a, str) for a in anchors_raw):
        raise r.error("trust_anchors", 'expected a list of DS or DNSKEY records as strings')
    anchor_path = r.path("trust_anchor_file", "", base)
    anchor_file = str(anchor_path) if anchor_path is not None else ""
    if dnssec == "validate":
        from mailwright.dns.dnssec import load_anchors  # noqa: PLC0415 - only when validating

        try:
            load_anchors(anchors_raw, anchor_file)
        except (OSError, ValueError) as exc:
            raise r.error("trust_anchors" if anchors_raw else "trust_anchor_file",
                          str(exc)) from None
    dns = DNSConfig(nameservers, r.duration("timeout", 5.0), dnssec, tuple(anchors_raw),
                    anchor_file)
    r.finish()

    r = _Reader(src, "outbound", top.get("outbound"))
    sched_raw = r.get("retry_schedule", ["1m", "5m", "15m", "30m", "1h", "2h", "4h"])
    if not isinstance(sched_raw, list) or not sched_raw:
        raise r.error("retry_schedule", "expected a non-empty list of durations")
    schedule: list[float] = []
    for i, v in enumerate(sched_raw):
        try:
            schedule.append(parse_duration(v))
        except ValueError as e:
            raise ConfigError(src, f"outbound.retry_schedule[{i}]", str(e)) from None
    outbound = OutboundConfig(
        port=r.int_("port", 25, 1, 65535),
        retry_schedule=tuple(schedule),
        max_age=r.duration("max_age", "5d"),
        delay_warning=r.duration("delay_warning", "4h"),
        max_per_domain=r.int_("max_per_domain", 4, 1),
        max_connections=r.int_("max_connections", 50, 1),
        require_tls=r.bool_("require_tls", False),
        verify_certificates=r.bool_("verify_certificates", False),
        lease=r.duration("lease", "15m"),
        double_bounce_recipient=r.str_("double_bounce_recipient", ""),
        ca_file=str(r.path("ca_file", None, base) or ""),
        mta_sts=r.bool_("mta_sts", True),
        dane=r.bool_("dane", True),
        tls_reports=r.bool_("tls_reports", True),
        tls_report_contact=r.str_("tls_report_contact", ""),
    )
    if outbound.double_bounce_recipient and "@" not in outbound.double_bounce_recipient[1:]:
        raise r.error("double_bounce_recipient", "expected an address such as postmaster@example.org")
    r.finish()

    r = _Reader(src, "limits", top.get("limits"))
    limits = LimitsConfig(
        max_message_size=r.size("max_message_size", 50 * 1024 * 1024),
        max_recipients=r.int_("max_recipients", 100, 1),
        max_connections=r.int_("max_connections", 10000, 1),
        max_connections_per_ip=r.int_("max_connections_per_ip", 50, 1),
        commands_per_second=r.float_("commands_per_second", 50.0),
        rate_limit_exempt=_networks(r, "rate_limit_exempt", ("127.0.0.0/8", "::1/128")),
        idle_timeout=r.duration("idle_timeout", "5m"),
        imap_idle_timeout=r.duration("imap_idle_timeout", "30m"),
        auth_failures_before_ban=r.int_("auth_failures_before_ban", 10, 1),
        auth_ban_time=r.duration("auth_ban_time", "15m"),
        default_quota=r.size("default_quota", 0),
        tls_handshake_timeout=r.duration("tls_handshake_timeout", "10s"),
        login_timeout=r.duration("login_timeout", "1m"),
        auth_address_failures_before_ban=r.int_("auth_address_failures_before_ban", 50, 1),
        auth_failure_delay=r.duration("auth_failure_delay", 0.5),
        auth_max_failure_delay=r.duration("auth_max_failure_delay", "5s"),
    )
    r.finish()

    r = _Reader(src, "retention", top.get("retention"))
    rules_raw = r.get("mailboxes", {"Trash": 30, "Junk": 30})
    if not isinstance(rules_raw, dict):
        raise r.error("mailboxes", "expected a table of mailbox name = days")
    rules: list[tuple[str, int]] = []
    for name, days in rules_raw.items():
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            raise ConfigError(src, f"retention.mailboxes.{name}", "expected days (integer >= 0)")
        rules.append((str(name), days))
    retention = RetentionConfig(tuple(rules), r.duration("interval", "1h"),
                                r.int_("trace", 30))
    r.finish()

    lst = top.get("listener", [])
    if not isinstance(lst, list):
        raise ConfigError(src, "listener", "expected [[listener]] tables")
    listeners: list[ListenerConfig] = []
    seen: set[tuple[str, int]] = set()
    for i, entry in enumerate(lst):
        r = _Reader(src, f"listener[{i}]", entry)
        proto = r.str_("protocol", "")
        if proto not in PROTOCOLS:
            raise r.error("protocol", f"unknown protocol {proto!r} (one of {', '.join(PROTOCOLS)})")
        address = r.str_("address", "127.0.0.1")
        try:
            ipaddress.ip_address(address)
        except ValueError:
            if not _valid_hostname(address):
                raise r.error("address", f"{address!r} is not an IP address or host name") from None
        port = r.int_("port", PROTOCOLS[proto], 0, 65535)
        if port and (address, port) in seen:
            raise r.error("port", f"{address}:{port} is used by another listener")
        seen.add((address, port))
        trusted = r.get("proxy_trusted", [])
        if not isinstance(trusted, list) or not all(isinstance(t, str) for t in trusted):
            raise r.error("proxy_trusted", "expected a list of addresses or networks")
        for t in trusted:
            try:
                ipaddress.ip_network(t, strict=False)
            except ValueError:
                raise r.error("proxy_trusted", f"{t!r} is not an address or network") from None
        listeners.append(
            ListenerConfig(
                proto, address, port, r.bool_("proxy_protocol", False), tuple(trusted),
                r.int_("max_connections", 0, 0),
            )
        )  # fmt: skip
        r.finish()

    r = _Reader(src, "sieve", top.get("sieve"))
    sieve = SieveConfig(
        before=r.path("before", None, base),
        after=r.path("after", None, base),
        global_dir=r.path("global_dir", None, base),
        max_script_size=r.size("max_script_size", 128 * 1024),
        max_scripts=r.int_("max_scripts", 32, 1),
        max_actions=r.int_("max_actions", 64, 1),
        max_redirects=r.int_("max_redirects", 4, 0),
        max_run_time=r.duration("max_run_time", 5.0),
        vacation_min_period=r.duration("vacation_min_period", "1d"),
        vacation_max_period=r.duration("vacation_max_period", "90d"),
        spam_score_header=r.str_("spam_score_header", "X-Spam-Score"),
        spam_status_header=r.str_("spam_status_header", "X-Spam-Status"),
        spam_max_score=r.float_("spam_max_score", 10.0) or 10.0,
        virus_score_header=r.str_("virus_score_header", "X-Virus-Score"),
    )
    r.finish()

    ma = top.get("mailauth", {})
    if not isinstance(ma, dict):
        raise ConfigError(src, "mailauth", "must be a table")
    from mailwright.mailauth.policy import MailauthSettings, PolicyError  # stdlib-only module

    try:
        MailauthSettings.from_mapping(ma)
    except PolicyError as e:
        raise ConfigError(src, "", str(e)) from None
    spam = top.get("spam", {})
    if not isinstance(spam, dict):
        raise ConfigError(src, "spam", "must be a table")
    from mailwright.spam.settings import SpamConfigError, SpamSettings  # stdlib-only module

    try:
        SpamSettings.from_mapping(spam)
    except SpamConfigError as e:
        key, _, message = str(e).partition(": ")
        raise ConfigError(src, key, message) from None

    r = _Reader(src, "srs", top.get("srs"))
    old = r.get("old_secrets", [])
    if not isinstance(old, list) or not all(isinstance(o, str) and o for o in old):
        raise r.error("old_secrets", "expected a list of non-empty strings")
    srs = SRSConfig(
        r.bool_("enabled", True),
        r.str_("secret", ""),
        tuple(old),
        r.duration("max_age", "21d"),
    )
    if srs.max_age < 86400 or srs.max_age > 1000 * 86400:
        raise r.error("max_age", "must be between 1d and 1000d")
    r.finish()

    r = _Reader(src, "dmarc", top.get("dmarc"))
    report_address = r.str_("report_address", "")
    if report_address and "@" not in report_address:
        raise r.error("report_address", f"{report_address!r} is not an address")
    dmarc = DMARCReportConfig(
        r.bool_("send_reports", True),
        report_address.lower(),
        r.str_("org_name", ""),
        r.duration("interval", "1h"),
    )
    if dmarc.interval < 60:
        raise r.error("interval", "must be at least 1m")
    r.finish()

    r = _Reader(src, "web", top.get("web"))
    web = WebConfig(r.duration("session_lifetime", "12h"), r.size("max_request", 32 << 20),
                    r.duration("idle_timeout", "30s"))
    if not 60 <= web.session_lifetime <= 90 * 86400:
        raise r.error("session_lifetime", "must be between 1m and 90d")
    if not 64 * 1024 <= web.max_request <= 1 << 30:
        raise r.error("max_request", "must be between 64KiB and 1GiB")
    if not 1 <= web.idle_timeout <= 3600:
        raise r.error("idle_timeout", "must be between 1s and 1h")
    r.finish()

    r = _Reader(src, "passwords", top.get("passwords"))
    passwords = PasswordsConfig(
        r.int_("hash_passes", 3, 1, 64),
        r.size("hash_memory", 64 * 1024 * 1024),
    )
    if not 64 * 1024 <= passwords.hash_memory <= 4 << 30:
        raise r.error("hash_memory", "must be between 64K and 4G")
    r.finish()

    top.finish()
    return Config(
        source, server, tls, storage, dns, outbound, limits, retention, tuple(listeners), ma,
        spam, srs, dmarc, sieve, acme, mtasts, web, passwords,
    )


def load_config(path: str | Path) -> Config:
    p = Path(path).absolute()
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(p), "", "configuration file not found") from None
    except OSError as e:
        raise ConfigError(str(p), "", f"cannot read: {e.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(str(p), "", "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(p), "", f"TOML syntax error: {e}") from None
    return parse_config(data, p)
