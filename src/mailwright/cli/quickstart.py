"""`mailwright quickstart EMAIL`: a working server for EMAIL's domain in one command.

On a fresh machine it does what `init`, `user add`, `dkim generate` and `dns-records` do one
by one (as mox's quickstart does): writes the config, the self-signed certificate and the data
directory, creates the account with a generated password, makes an RSA and an Ed25519 DKIM key
(outgoing mail carries both signatures, RFC 8463 3), and prints the DNS records, the settings
for mail clients and what is left to do. The password is printed once and stored only hashed.
"""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path
from typing import Any

from mailwright.accounts.passwords import hash_password
from mailwright.address import AddressError, parse_address
from mailwright.cli.common import CLIError, with_store
from mailwright.config import Config, load_config
from mailwright.mailauth.keys import KeyStore
from mailwright.mailauth.records import dns_records, render_zone
from mailwright.store.api import Accounts


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser(
        "quickstart", parents=[common],
        help="set up a server for EMAIL's domain: config, account, DKIM keys, DNS records",
        description="Write a config for the domain of EMAIL into DIR (default: the current "
        "directory), create the account EMAIL with a generated password, make DKIM keys and "
        "print the DNS records to publish, the settings for mail clients and the next steps.")
    s.add_argument("email")
    s.add_argument("--dir", default=".", help="where to write mailwright.toml (default .)")
    s.add_argument("--hostname", help="the server's name (default mail.DOMAIN)")
    s.add_argument("--bind", default="0.0.0.0",
                   help="address to listen on (default 0.0.0.0: every IPv4 address)")
    s.add_argument("--port-base", type=int, default=0,
                   help="add N to every standard port (default 0: 25, 587, 993, ...)")
    s.add_argument("--storage", choices=["sqlite", "postgres"], default="sqlite")
    s.add_argument("--dsn", help="with --storage postgres: postgresql://USER@HOST:PORT/DB")
    s.add_argument("--force", action="store_true", help="overwrite an existing config")
    s.set_defaults(func=cmd_quickstart)


def _port(config: Config, protocol: str) -> int | None:
    return next((lc.port for lc in config.listeners if lc.protocol == protocol), None)


def client_settings(config: Config, address: str) -> list[str]:
    host = config.server.hostname
    lines = [f"  user name: {address} (the full address) for every protocol"]
    rows = (
        ("IMAP", "imaps", "TLS", "imap", "STARTTLS"),
        ("SMTP", "submissions", "TLS", "submission", "STARTTLS"),
        ("POP3", "pop3s", "TLS", "pop3", "STLS"),
    )
    for label, tls_proto, tls_name, plain_proto, plain_name in rows:
        tls_port, plain_port = _port(config, tls_proto), _port(config, plain_proto)
        parts = []
        if tls_port:
            parts.append(f"port {tls_port} with {tls_name}")
        if plain_port:
            parts.append(f"port {plain_port} with {plain_name}")
        extra = ", password authentication" + (" (required)" if label == "SMTP" else "")
        lines.append(f"  {label:<5} {host}, " + " or ".join(parts) + extra)
    http = _port(config, "http")
    if http:
        lines.append(f"  Thunderbird finds these by itself from http://{host}:{http}"
                     "/mail/config-v1.1.xml (publish autoconfig.DOMAIN as a CNAME of the host"
                     " and forward port 80 there to use it)")
    return lines


def cmd_quickstart(args: argparse.Namespace) -> int:
    from mailwright.cli.main import cmd_init

    try:
        address = str(parse_address(args.email))
    except AddressError as e:
        raise CLIError(f"{args.email}: {e}", 2) from None
    domain = address.rpartition("@")[2]
    target = Path(args.dir)
    cmd_init(argparse.Namespace(
        dir=str(target), domain=domain, hostname=args.hostname, bind=args.bind,
        port_base=args.port_base, force=args.force, storage=args.storage, dsn=args.dsn))
    config = load_config(target / "mailwright.toml")
    password = secrets.token_urlsafe(18)
    postmaster = f"postmaster@{domain}"

    async def account(store: Accounts) -> None:
        await store.add_account(address, hash_password(password, config.passwords),
                                config.limits.default_quota)
        if address != postmaster and await store.get_alias(postmaster) is None and (
            await store.find_account(postmaster) is None
        ):
            await store.add_alias(postmaster, [address])  # RFC 5321 4.5.1

    with_store(config, account)
    keys = KeyStore(config.server.data_dir)
    if not keys.keys(domain):
        keys.generate(domain, algorithm="rsa")
        keys.generate(domain, algorithm="ed25519")
    records = dns_records(domain, config.server.hostname, keys.keys(domain),
                          [(lc.protocol, lc.port) for lc in config.listeners])
    cfg = (target / "mailwright.toml").resolve()
    host = config.server.hostname
    out = [
        "",
        f"Mailwright is set up for {domain} in {cfg.parent} (server name {host}).",
        "",
        "Account",
        f"  address:  {address}",
        f"  password: {password}",
        f"  (shown only now; change it with `mailwright -c {cfg} user passwd {address}`;"
        f" {postmaster} delivers to it)",
        "",
        "Mail client settings",
        *client_settings(config, address),
        "",
        "DNS records to publish (zone-file syntax; `mailwright dns-records " + domain
        + "` prints them again)",
    ]
    zone = render_zone(records, header=[
        f"also an address record for the server: {host}. IN A <its public IPv4 address>",
    ])
    out += ["  " + line if line else "" for line in zone.rstrip("\n").split("\n")]
    out += [
        "",
        "Next steps",
        f"  1. Point {host} at this machine (A and AAAA records) and ask whoever owns its"
        f" address for a PTR record naming {host} (RFC 5321 4.1.4).",
        "  2. Publish the records above; SPF, DKIM and DMARC make other servers trust your mail.",
        f"  3. Replace the self-signed certificate ([tls] cert and key in {cfg}) with one for"
        f" {host}, for example from Let's Encrypt.",
        "  4. Let the ports above through the firewall (25 must be reachable from anywhere).",
        f"  5. Start it: `mailwright -c {cfg} serve` (or contrib/mailwright.service with systemd),"
        " then check with `mailwright check`.",
    ]
    print("\n".join(out))
    return 0
