"""What a mail client needs to know: the servers, and an Apple configuration profile.

The same listeners the autoconfig documents describe (`web.autoconfig`); the profile is a
property list with one `com.apple.mail.managed` payload (Apple's Configuration Profile
Reference), without the password: the device asks for it, and an app password goes there.
"""

from __future__ import annotations

import plistlib
import uuid
from dataclasses import dataclass

from markupsafe import Markup

from mailwright.config import Config

# protocol -> (what it is for, how the connection is secured)
_KINDS = {
    "imaps": ("IMAP (incoming)", "TLS"), "imap": ("IMAP (incoming)", "STARTTLS"),
    "pop3s": ("POP3 (incoming)", "TLS"), "pop3": ("POP3 (incoming)", "STARTTLS"),
    "submissions": ("SMTP (outgoing)", "TLS"), "submission": ("SMTP (outgoing)", "STARTTLS"),
    "managesieve": ("ManageSieve (filters)", "STARTTLS"),
}


@dataclass(frozen=True, slots=True)
class Server:
    purpose: str
    host: str
    port: int
    security: str


def servers(config: Config) -> list[Server]:
    out = [Server(_KINDS[lc.protocol][0], config.server.hostname, lc.port, _KINDS[lc.protocol][1])
           for lc in config.listeners if lc.protocol in _KINDS]
    return sorted(out, key=lambda s: (s.purpose, s.security != "TLS"))


def _first(config: Config, *protocols: str) -> tuple[int, bool] | None:
    for proto in protocols:
        for lc in config.listeners:
            if lc.protocol == proto:
                return lc.port, proto.endswith("s")
    return None


def mobileconfig(config: Config, address: str, *, stamp: int) -> bytes:
    host = config.server.hostname
    incoming = _first(config, "imaps", "imap") or (993, True)
    outgoing = _first(config, "submissions", "submission") or (465, True)
    ns = uuid.uuid5(uuid.NAMESPACE_DNS, host)
    mail = {
        "PayloadType": "com.apple.mail.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{_reverse(host)}.mail.{address}",
        "PayloadUUID": str(uuid.uuid5(ns, f"mail:{address}")).upper(),
        "PayloadDisplayName": address,
        "EmailAccountDescription": address,
        "EmailAccountType": "EmailTypeIMAP",
        "EmailAddress": address,
        "IncomingMailServerHostName": host,
        "IncomingMailServerPortNumber": incoming[0],
        "IncomingMailServerUseSSL": incoming[1],
        "IncomingMailServerUsername": address,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": host,
        "OutgoingMailServerPortNumber": outgoing[0],
        "OutgoingMailServerUseSSL": outgoing[1],
        "OutgoingMailServerUsername": address,
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingPasswordSameAsIncomingPassword": True,
    }
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{_reverse(host)}.profile.{address}",
        "PayloadUUID": str(uuid.uuid5(ns, f"profile:{address}:{stamp}")).upper(),
        "PayloadDisplayName": f"Mail for {address}",
        "PayloadDescription": f"IMAP and SMTP settings of {address} on {host}",
        "PayloadContent": [mail],
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML)


def web_origin(config: Config) -> str:
    """The web interface's address under the server's name (not the Host a browser sent: the
    phone that scans it must reach the server by its public name)."""
    port = next((lc.port for lc in config.listeners if lc.protocol == "https"), 443)
    return f"https://{config.server.hostname}" + ("" if port == 443 else f":{port}")


def qr_svg(text: str) -> Markup:
    """`text` as a QR code, an inline <svg> element: drawn with attributes only (no style
    attribute, no script), so the page's strict Content-Security-Policy lets it show."""
    import segno

    svg = segno.make(text, error="m").svg_inline(scale=4, border=2, light="#fff",
                                                title="QR code of the profile's address")
    return Markup(svg)  # segno's own markup; `text` is escaped by it (XML)


def _reverse(host: str) -> str:
    return ".".join(reversed(host.split(".")))
