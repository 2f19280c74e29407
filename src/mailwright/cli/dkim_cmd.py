"""`mailwright dkim generate|list`: DKIM signing keys under <data_dir>/dkim."""

from __future__ import annotations

import argparse
from typing import Any

from mailwright.cli.common import CLIError, load
from mailwright.mailauth.keys import (
    ALGORITHMS,
    DkimKeyError,
    KeyStore,
    normalize_domain,
    validate_selector,
)


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser("dkim", parents=[common], help="DKIM signing keys")
    dsub = s.add_subparsers(dest="action", required=True)
    g = dsub.add_parser(
        "generate",
        parents=[common],
        help="make a signing key and print its DNS TXT record",
        description="Make a DKIM signing key for DOMAIN and print the TXT record to publish. "
        "With both an ed25519 and an rsa key, outgoing mail carries both signatures.",
    )
    g.add_argument("domain")
    g.add_argument("--selector", help="DNS selector (default: rsaYYYYMM or edYYYYMM)")
    g.add_argument("--algorithm", choices=list(ALGORITHMS), default="rsa",
                   help="rsa (2048 bits, default) or ed25519")
    g.set_defaults(func=cmd_generate)
    ls = dsub.add_parser("list", parents=[common], help="list keys and their TXT records")
    ls.add_argument("domain", nargs="?")
    ls.set_defaults(func=cmd_list)


def cmd_generate(args: argparse.Namespace) -> int:
    try:  # bad arguments are usage errors (exit 2), before the config is even read
        domain = normalize_domain(args.domain)
        selector = validate_selector(args.selector) if args.selector else None
    except DkimKeyError as exc:
        raise CLIError(str(exc), 2) from None
    config = load(args)
    store = KeyStore(config.server.data_dir)
    try:
        key = store.generate(domain, algorithm=args.algorithm, selector=selector)
    except DkimKeyError as exc:
        raise CLIError(str(exc), 1) from None
    print(f"; DKIM {key.algorithm} key for {key.domain}, selector {key.selector}")
    print(f"; private key: {store.domain_dir(key.domain) / (key.selector + '.' + key.algorithm + '.pem')}")
    print("; publish this record, then outgoing mail from the domain is signed with the key:")
    print(key.zone_line())
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    config = load(args)
    store = KeyStore(config.server.data_dir)
    try:
        domains = [normalize_domain(args.domain)] if args.domain else store.domains()
        for domain in domains:
            for key in store.keys(domain, include_inactive=True):
                state = "active" if key.active else "inactive"
                print(f"; {key.domain} {key.selector} {key.algorithm} {state} {key.created}")
                print(key.zone_line())
    except DkimKeyError as exc:
        raise CLIError(str(exc), 1) from None
    return 0
