"""Client autoconfiguration documents, so mail clients find our servers from an address alone.

Thunderbird's autoconfig (config-v1.1.xml, looked up at autoconfig.<domain> and
<domain>/.well-known/autoconfig/) and Outlook's POX autodiscover; RFC 6186 SRV records are
printed by `mailwright dns-records`.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from mailwright.config import Config

# protocol key -> (client-side type, socket type)
_INCOMING = {"imaps": ("imap", "SSL"), "imap": ("imap", "STARTTLS"),
             "pop3s": ("pop3", "SSL"), "pop3": ("pop3", "STARTTLS")}
_OUTGOING = {"submissions": "SSL", "submission": "STARTTLS"}


def thunderbird(config: Config, domain: str) -> str:
    host = escape(config.server.hostname)
    d = escape(domain)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<clientConfig version="1.1">',
        f'  <emailProvider id="{d}">',
        f"    <domain>{d}</domain>",
        f"    <displayName>{d} mail</displayName>",
        f"    <displayShortName>{d}</displayShortName>",
    ]
    for lc in config.listeners:
        if lc.protocol in _INCOMING:
            kind, sock = _INCOMING[lc.protocol]
            parts += [
                f'    <incomingServer type="{kind}">',
                f"      <hostname>{host}</hostname>",
                f"      <port>{lc.port}</port>",
                f"      <socketType>{sock}</socketType>",
                "      <username>%EMAILADDRESS%</username>",
                "      <authentication>password-cleartext</authentication>",
                "    </incomingServer>",
            ]
    for lc in config.listeners:
        if lc.protocol in _OUTGOING:
            parts += [
                '    <outgoingServer type="smtp">',
                f"      <hostname>{host}</hostname>",
                f"      <port>{lc.port}</port>",
                f"      <socketType>{_OUTGOING[lc.protocol]}</socketType>",
                "      <username>%EMAILADDRESS%</username>",
                "      <authentication>password-cleartext</authentication>",
                "    </outgoingServer>",
            ]
    parts += ["  </emailProvider>", "</clientConfig>"]
    return "\n".join(parts) + "\n"


def autodiscover(config: Config, email: str) -> str:
    host = escape(config.server.hostname)
    protos = []
    for lc in config.listeners:
        kind = {"imaps": "IMAP", "pop3s": "POP3", "submissions": "SMTP"}.get(lc.protocol)
        if kind:
            protos.append(
                "      <Protocol>\n"
                f"        <Type>{kind}</Type>\n"
                f"        <Server>{host}</Server>\n"
                f"        <Port>{lc.port}</Port>\n"
                f"        <LoginName>{escape(email)}</LoginName>\n"
                "        <SSL>on</SSL>\n"
                "        <SPA>off</SPA>\n"
                "        <AuthRequired>on</AuthRequired>\n"
                "      </Protocol>"
            )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">\n'
        '  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">\n'
        "    <Account>\n"
        "      <AccountType>email</AccountType>\n"
        "      <Action>settings</Action>\n"
        + "\n".join(protos)
        + "\n    </Account>\n  </Response>\n</Autodiscover>\n"
    )
