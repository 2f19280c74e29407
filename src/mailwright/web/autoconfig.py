"""Client autoconfiguration documents, so mail clients find our servers from an address alone.

Thunderbird's autoconfig (config-v1.1.xml, looked up at autoconfig.<domain> and
<domain>/.well-known/autoconfig/) and Outlook's POX autodiscover; RFC 6186 SRV records are
printed by `mailwright dns-records`.

The documents are built with `xml.etree`, never by pasting strings: the address and domain come
from the request, and the library escapes them in text and attributes alike. The listener asks
for them only for our own domains (a config for any domain would point other people's clients,
and their passwords, here).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from mailwright.config import Config

# protocol key -> (client-side type, socket type)
_INCOMING = {"imaps": ("imap", "SSL"), "imap": ("imap", "STARTTLS"),
             "pop3s": ("pop3", "SSL"), "pop3": ("pop3", "STARTTLS")}  # fmt: skip
_OUTGOING = {"submissions": "SSL", "submission": "STARTTLS"}
_AUTODISCOVER_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
_OUTLOOK_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"


def _child(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _document(root: ET.Element) -> str:
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def thunderbird(config: Config, domain: str) -> str:
    host = config.server.hostname
    root = ET.Element("clientConfig", version="1.1")
    provider = _child(root, "emailProvider", id=domain)
    _child(provider, "domain", domain)
    _child(provider, "displayName", f"{domain} mail")
    _child(provider, "displayShortName", domain)
    for lc in config.listeners:
        if lc.protocol in _INCOMING:
            kind, sock = _INCOMING[lc.protocol]
            server = _child(provider, "incomingServer", type=kind)
            _server_fields(server, host, lc.port, sock)
    for lc in config.listeners:
        if lc.protocol in _OUTGOING:
            server = _child(provider, "outgoingServer", type="smtp")
            _server_fields(server, host, lc.port, _OUTGOING[lc.protocol])
    return _document(root)


def _server_fields(server: ET.Element, host: str, port: int, socket_type: str) -> None:
    _child(server, "hostname", host)
    _child(server, "port", str(port))
    _child(server, "socketType", socket_type)
    _child(server, "username", "%EMAILADDRESS%")
    _child(server, "authentication", "password-cleartext")


def autodiscover(config: Config, email: str) -> str:
    host = config.server.hostname
    root = ET.Element("Autodiscover", xmlns=_AUTODISCOVER_NS)
    response = _child(root, "Response", xmlns=_OUTLOOK_NS)
    account = _child(response, "Account")
    _child(account, "AccountType", "email")
    _child(account, "Action", "settings")
    for lc in config.listeners:
        kind = {"imaps": "IMAP", "pop3s": "POP3", "submissions": "SMTP"}.get(lc.protocol)
        if kind:
            protocol = _child(account, "Protocol")
            _child(protocol, "Type", kind)
            _child(protocol, "Server", host)
            _child(protocol, "Port", str(lc.port))
            _child(protocol, "LoginName", email)
            _child(protocol, "SSL", "on")
            _child(protocol, "SPA", "off")
            _child(protocol, "AuthRequired", "on")
    return _document(root)
