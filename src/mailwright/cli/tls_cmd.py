"""`mailwright tls status|renew`: the certificates the listeners present, and ACME renewal
(and `tls reports|import|results`, TLS reporting, from `cli/tlsrpt_cmd.py`)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path
from typing import Any

from mailwright.cli.common import CLIError, load
from mailwright.config import Config


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser("tls", parents=[common], help="TLS certificates and ACME")
    tsub = s.add_subparsers(dest="action", required=True)
    x = tsub.add_parser("status", parents=[common],
                        help="each certificate: names, issuer, expiry, whether ACME manages it")
    x.set_defaults(func=cmd_status)
    x = tsub.add_parser("renew", parents=[common],
                        help="ask the running server to renew the ACME certificate now")
    x.set_defaults(func=cmd_renew)
    # TLS reporting (RFC 8460): reports, import, results
    from mailwright.cli.tlsrpt_cmd import add_actions

    add_actions(tsub, common)


def certificates(config: Config) -> list[tuple[str, Path, bool, bool]]:
    """(role, path, managed by ACME, in use) for every certificate the config names."""
    from mailwright.acme.manager import acme_dir

    found: list[tuple[str, Path, bool, bool]] = []
    acme_cert = acme_dir(config) / "cert.pem"
    acme_live = config.tls.acme and acme_cert.exists()
    if config.tls.acme:
        found.append(("acme", acme_cert, True, acme_live))
    if config.tls.cert is not None:
        found.append(("configured", config.tls.cert, False, not acme_live))
    return found


def cmd_status(args: argparse.Namespace) -> int:
    from mailwright.tls import describe_certificate

    config = load(args)
    rows = certificates(config)
    if not rows:
        print("no certificate configured ([tls] cert and key are empty)")
        return 0
    now = dt.datetime.now(dt.UTC)
    for role, path, managed, in_use in rows:
        print(f"certificate: {path}")
        print(f"  role: {role}{' (in use)' if in_use else ' (not in use)'}")
        print(f"  acme: {'yes' if managed else 'no'}")
        try:
            info = describe_certificate(path.read_bytes())
        except FileNotFoundError:
            print("  state: not issued yet")
            continue
        except (OSError, ValueError) as e:
            raise CLIError(f"{path}: cannot read the certificate: {e}", 1) from None
        not_after = info["not_after"]
        assert isinstance(not_after, dt.datetime)
        names = info["names"]
        assert isinstance(names, list)
        days = (not_after - now).total_seconds() / 86400
        print(f"  names: {', '.join(names)}")
        print(f"  issuer: {info['issuer']}")
        print(f"  expires: {not_after.isoformat()} ({days:.0f} days)"
              + (" EXPIRED" if days < 0 else ""))  # fmt: skip
    return 0


def cmd_renew(args: argparse.Namespace) -> int:
    from mailwright.acme.manager import acme_dir

    config = load(args)
    if not config.tls.acme:
        raise CLIError(f"{config.source}: tls.acme: ACME is not enabled", 2)
    request = acme_dir(config) / "renew-request"
    request.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(request, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    print(f"renewal requested; the server renews within [acme] check_interval "
          f"({config.acme.check_interval:.0f}s)")
    return 0
