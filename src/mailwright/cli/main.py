"""`mailwright`: the operator's command line (see shared/design/operator-contract.md)."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import importlib
import json
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from mailwright import __version__
from mailwright.accounts.admin import admins, create_account, set_admin, set_send_as
from mailwright.accounts.passwords import hash_password
from mailwright.address import AddressError, normalize_domain, parse_address
from mailwright.cli.common import CLIError, load, with_store
from mailwright.cli.roles import UserAdmin
from mailwright.config import PROTOCOLS, ConfigError
from mailwright.filemodes import restrict_umask
from mailwright.store.api import Account, AccountLookup, Accounts, StoreError

Command = Callable[[argparse.Namespace], int]

# Subcommands that live in modules of their own: each module has add_parser(subparsers).
PLUGGABLE = {
    "queue": ("mailwright.cli.queue_cmd", "the outbound queue"),
    "dkim": ("mailwright.cli.dkim_cmd", "DKIM signing keys"),
    "dmarc": ("mailwright.cli.dmarc_cmd", "DMARC aggregate reports"),
    "dns-records": ("mailwright.cli.dnsrecords_cmd", "print the DNS records to publish"),
    # one module registers both `import` and `export`
    "import": ("mailwright.cli.migrate", "migration in and out"),
    "quickstart": ("mailwright.cli.quickstart", "set up a server for an address in one step"),
    "spam": ("mailwright.cli.spam_cmd", "spam filter: train and check"),
    "sieve": ("mailwright.cli.sieve_cmd", "users' Sieve filter scripts"),
    "tls": ("mailwright.cli.tls_cmd", "TLS certificates, ACME and TLS reports"),
    "trace": ("mailwright.cli.trace_cmd", "where a message went (Message-ID or queue id)"),
}


# --- init ---------------------------------------------------------------------------------------


def render_config(hostname: str, domain: str, bind: str, port_base: int,
                  backend: str = "sqlite", dsn: str = "") -> str:
    lines = [
        "# Mailwright configuration, written by `mailwright init`.",
        "# Relative paths are relative to this file's folder.",
        "",
        "[server]",
        f'hostname = "{hostname}"',
        'data_dir = "data"',
        "",
        "[tls]",
        'cert = "tls/cert.pem"',
        'key = "tls/key.pem"',
        "",
        "[storage]",
        f"backend = {json.dumps(backend)}",
        f"dsn = {json.dumps(dsn)}",
        "",
        "[dns]",
        "nameservers = []",
        "",
        "[outbound]",
        "port = 25",
        'retry_schedule = ["1m", "5m", "15m", "30m", "1h", "2h", "4h"]',
        'max_age = "5d"',
        "",
        f"# first local domain: {domain} (kept in the store; see `mailwright domain list`)",
    ]
    for proto, port in PROTOCOLS.items():
        if port + port_base > 65535:
            continue  # only http (N+8080) can overflow; see cmd_init
        lines += ["", "[[listener]]", f'protocol = "{proto}"', f'address = "{bind}"',
                  f"port = {port + port_base}"]
    return "\n".join(lines) + "\n"


def cmd_init(args: argparse.Namespace) -> int:
    from mailwright.config import load_config
    from mailwright.tls import make_self_signed

    try:
        domain = normalize_domain(args.domain)
    except AddressError as e:
        raise CLIError(f"--domain: {e}", 2) from None
    hostname = (args.hostname or f"mail.{domain}").lower()
    if not 0 <= args.port_base <= 65535 - 995:
        raise CLIError("--port-base: out of range", 2)
    if args.port_base + PROTOCOLS["http"] > 65535:
        print(f"note: no http listener: port {args.port_base + PROTOCOLS['http']} is out of range",
              file=sys.stderr)
    storage = getattr(args, "storage", "sqlite")
    dsn = getattr(args, "dsn", None) or ""
    if storage == "postgres" and not dsn:
        raise CLIError("--storage postgres needs --dsn postgresql://USER@HOST:PORT/DB", 2)
    if storage == "sqlite" and dsn:
        raise CLIError("--dsn is for --storage postgres", 2)
    target = Path(args.dir)
    cfg = target / "mailwright.toml"
    if cfg.exists() and not args.force:
        raise CLIError(f"{cfg} already exists (use --force to overwrite)", 1)
    if not target.exists():
        target.mkdir(parents=True)
        # The folder itself only holds three names; everything in it is closed to others
        # (umask 027, key 0600). It stays passable, as /etc/postfix is, so that the
        # `[server] user` a root-started server drops to can reach its data directory.
        target.chmod(0o755)
    cfg.write_text(render_config(hostname, domain, args.bind, args.port_base, storage, dsn))
    if storage == "postgres":
        cfg.chmod(0o600)  # the DSN may carry a password
    make_self_signed(hostname, target / "tls" / "cert.pem", target / "tls" / "key.pem")
    (target / "data").mkdir(exist_ok=True)
    config = load_config(cfg)

    async def add(store: Accounts) -> None:
        if not await store.has_domain(domain):
            await store.add_domain(domain)

    try:
        # the first domain goes where the config says mail lives: SQLite here, or PostgreSQL
        with_store(config, add)
    except Exception:
        cfg.unlink(missing_ok=True)  # a config whose store cannot be opened is not a start
        raise
    where = "PostgreSQL" if storage == "postgres" else "SQLite"
    print(f"wrote {cfg}; local domain {domain} ({where}); hostname {hostname}")
    return 0


# --- serve / check ------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from mailwright.app import run
    from mailwright.log import setup_logging

    if args.workers is not None and not 0 <= args.workers <= 256:
        raise CLIError(f"--workers {args.workers}: expected 0 (one per core) to 256", 2)
    config = load(args)
    setup_logging(config.server.log_level, config.server.log_format)
    return run(config, workers=args.workers)


def cmd_check(args: argparse.Namespace) -> int:
    from mailwright.cli.check import cmd_check as check

    return check(args)


# --- domains, users, aliases ---------------------------------------------------------------------


def _domain(text: str) -> str:
    try:
        return normalize_domain(text)
    except AddressError as e:
        raise CLIError(str(e), 2) from None


def _address(text: str) -> str:
    try:
        return str(parse_address(text))
    except AddressError as e:
        raise CLIError(str(e), 2) from None


def cmd_domain(args: argparse.Namespace) -> int:
    config = load(args)
    if args.action == "list":
        for d in with_store(config, lambda s: s.list_domains()):
            print(d.name)
        return 0
    name = _domain(args.domain)
    if args.action == "add":
        with_store(config, lambda s: s.add_domain(name))
        print(f"added domain {name}")
    else:
        with_store(config, lambda s: s.delete_domain(name))
        print(f"deleted domain {name}")
    return 0


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
    elif not sys.stdin.isatty():
        raise CLIError("no terminal to ask for the password: use --password-stdin", 2)
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise CLIError("passwords do not match", 1)
    if not password:
        raise CLIError("empty password", 2)
    return password


def cmd_user(args: argparse.Namespace) -> int:
    config = load(args)
    if args.action == "list":
        async def listing(
            store: UserAdmin,
        ) -> tuple[list[Account], list[tuple[int, str]], dict[int, str]]:
            return (await store.list_accounts(), await store.list_send_as(),
                    {i: "1" for i in await admins(store)})

        accounts, grants, admin_ids = with_store(config, listing)
        for acc in accounts:
            flags = " disabled" if acc.disabled else ""
            flags += " admin" if admin_ids.get(acc.id) == "1" else ""
            limit = f" quota={acc.quota_bytes}" if acc.quota_bytes else ""
            send_as = ",".join(a for i, a in grants if i == acc.id)
            print(f"{acc.address}{limit}{flags}{f' send-as={send_as}' if send_as else ''}")
        return 0
    address = _address(args.address)

    async def account_id(store: AccountLookup) -> int:
        acc = await store.find_account(address)
        if acc is None:
            raise CLIError(f"no such user: {address}", 1)
        return acc.id

    if args.action == "add":
        password = read_password(args.password_stdin)
        quota: int = args.quota if args.quota is not None else config.limits.default_quota
        postmaster = f"postmaster@{address.rpartition('@')[2]}"

        async def add(store: Accounts) -> bool:
            hashed = hash_password(password, config.passwords)
            return (await create_account(store, address, hashed, quota))[1]

        made_alias = with_store(config, add)
        print(f"added user {address}")
        if made_alias:
            print(f"{postmaster} now delivers to {address} (RFC 5321 4.5.1);"
                  f" change it with `mailwright alias`")
    elif args.action == "passwd":
        new_password = read_password(args.password_stdin)

        async def passwd(store: Accounts) -> None:
            hashed = hash_password(new_password, config.passwords)
            await store.set_password(await account_id(store), hashed)

        with_store(config, passwd)
        print(f"changed password of {address}")
    elif args.action == "set":

        # RFC 6409 8.1: which From:/Sender: addresses submission lets this user use
        grant = [_address(a) for a in args.send_as or ()]
        revoke = [_address(a) for a in args.no_send_as or ()]

        async def update(store: UserAdmin) -> None:
            keep = None if args.pop3_keep is None else args.pop3_keep == "yes"
            acc_id = await account_id(store)
            await store.update_account(
                acc_id, quota_bytes=args.quota, pop3_keep=keep,
                disabled=None if args.disabled is None else args.disabled == "yes",
            )
            if args.quota_messages is not None:
                # RFC 9208 QUOTA=RES-MESSAGE
                await store.set_message_quota(acc_id, args.quota_messages)
            if args.admin is not None:  # the web interface's /admin/ pages
                await set_admin(store, acc_id, args.admin == "yes")
            for a in await set_send_as(store, acc_id, grant, revoke):
                raise CLIError(f"{address} has no send-as grant for {a}", 1)

        with_store(config, update)
        print(f"updated user {address}")
    else:
        from mailwright.cli.accounts import delete_user

        return delete_user(config, address, args.force)
    return 0


def cmd_alias(args: argparse.Namespace) -> int:
    config = load(args)
    if args.action == "list":
        for a in with_store(config, lambda s: s.list_aliases()):
            print(f"{a.source} -> {', '.join(a.targets)}")
        return 0
    src = args.alias.strip()
    source = f"@{_domain(src[1:])}" if src.startswith("@") else _address(src)
    if args.action == "add":
        targets = [_address(t) for t in args.targets]
        with_store(config, lambda s: s.add_alias(source, targets))
        print(f"added alias {source} -> {', '.join(targets)}")
    else:
        with_store(config, lambda s: s.delete_alias(source))
        print(f"deleted alias {source}")
    return 0


# --- demo ---------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    """Quick start: a demo server in ./demo on loopback ports (port base 10000)."""
    from mailwright.config import load_config

    target = Path(args.dir)
    cfg = target / "mailwright.toml"
    if not cfg.exists():
        ns = argparse.Namespace(
            dir=str(target), domain="example.test", hostname=None, bind="127.0.0.1",
            port_base=args.port_base, force=False,
        )
        cmd_init(ns)
    config = load_config(cfg)
    user = "demo@example.test"
    password = secrets.token_urlsafe(12)

    async def ensure_user(store: Accounts) -> None:
        acc = await store.find_account(user)
        if acc is None:
            await store.add_account(user, hash_password(password, config.passwords))
        else:
            await store.set_password(acc.id, hash_password(password, config.passwords))

    with_store(config, ensure_user)
    print(f"demo user: {user}  password: {password}")
    for lc in config.listeners:
        print(f"  {lc.protocol:<12} {lc.address}:{lc.port}")
    print("stop with Ctrl-C")
    sys.stdout.flush()
    from mailwright.app import run
    from mailwright.log import setup_logging

    setup_logging(config.server.log_level, config.server.log_format)
    return run(config)


# --- parser -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    # -c/--debug are accepted before and after the subcommand; SUPPRESS keeps a subcommand's
    # parser from overwriting a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default=argparse.SUPPRESS,
                        help="config file (default: $MAILWRIGHT_CONFIG or ./mailwright.toml)")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks on errors")

    p = argparse.ArgumentParser(
        prog="mailwright", description="Mailwright mail server", parents=[common]
    )
    p.add_argument("--version", action="version", version=f"mailwright {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("init", parents=[common], help="create a config, TLS certificate and data directory")
    s.add_argument("dir")
    s.add_argument("--domain", required=True)
    s.add_argument("--hostname")
    s.add_argument("--bind", default="127.0.0.1")
    s.add_argument("--port-base", type=int, default=0)
    s.add_argument("--force", action="store_true")
    s.add_argument("--storage", choices=["sqlite", "postgres"], default="sqlite",
                   help="where mail lives (default sqlite, in the data directory)")
    s.add_argument("--dsn", help="with --storage postgres: postgresql://USER@HOST:PORT/DB")
    s.set_defaults(func=cmd_init)

    s = sub.add_parser("serve", parents=[common], help="run every listener until SIGTERM")
    s.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes (overrides [server] workers; 0 = one per core)")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("check", parents=[common], help="validate the config and the store")
    s.add_argument("--migrate", action="store_true", help="apply schema migrations (always done)")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("demo", parents=[common], help="init ./demo if needed and serve it with a demo user")
    s.add_argument("--dir", default="demo")
    s.add_argument("--port-base", type=int, default=10000)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("domain", parents=[common], help="local domains")
    dsub = s.add_subparsers(dest="action", required=True)
    x = dsub.add_parser("add", parents=[common])
    x.add_argument("domain")
    dsub.add_parser("list", parents=[common])
    x = dsub.add_parser("del", parents=[common])
    x.add_argument("domain")
    s.set_defaults(func=cmd_domain)

    s = sub.add_parser("user", parents=[common], help="accounts")
    usub = s.add_subparsers(dest="action", required=True)
    x = usub.add_parser("add", parents=[common])
    x.add_argument("address")
    x.add_argument("--password-stdin", action="store_true")
    x.add_argument("--quota", type=int, help="quota in bytes (0 = unlimited)")
    usub.add_parser("list", parents=[common])
    x = usub.add_parser("passwd", parents=[common])
    x.add_argument("address")
    x.add_argument("--password-stdin", action="store_true")
    x = usub.add_parser("set", parents=[common], help="change quota, POP3 keep, disabled")
    x.add_argument("address")
    x.add_argument("--quota", type=int)
    x.add_argument("--quota-messages", type=int,
                   help="largest number of messages (0 = unlimited)")
    x.add_argument("--pop3-keep", choices=["yes", "no"],
                   help="POP3 deletions move to Trash instead of expunging")
    x.add_argument("--disabled", choices=["yes", "no"])
    x.add_argument("--admin", choices=["yes", "no"],
                   help="the admin role: the web interface's /admin/ pages")
    x.add_argument("--send-as", action="append", metavar="ADDR",
                   help="let the user send with this From: address (repeatable)")
    x.add_argument("--no-send-as", action="append", metavar="ADDR",
                   help="withdraw a --send-as grant (repeatable)")
    x = usub.add_parser("del", parents=[common],
                        help="delete an account, its mail, and its place in aliases")
    x.add_argument("address")
    x.add_argument("--force", action="store_true",
                   help="delete even if the account has mail, without asking")
    s.set_defaults(func=cmd_user)

    s = sub.add_parser("alias", parents=[common], help="aliases (@domain is a catch-all)")
    asub = s.add_subparsers(dest="action", required=True)
    x = asub.add_parser("add", parents=[common])
    x.add_argument("alias")
    x.add_argument("targets", nargs="+")
    asub.add_parser("list", parents=[common])
    x = asub.add_parser("del", parents=[common])
    x.add_argument("alias")
    s.set_defaults(func=cmd_alias)

    for name, (module, help_) in PLUGGABLE.items():
        try:
            mod = importlib.import_module(module)
        except ImportError as e:
            # A broken install or a missing dependency: the other commands still work, and this
            # one fails naming its module and the cause (never a quiet "not available").
            s = sub.add_parser(name, parents=[common], help=f"{help_} (cannot be loaded)")
            s.add_argument("rest", nargs=argparse.REMAINDER)
            s.set_defaults(func=_unloadable(name, module, e))
            continue
        mod.add_parser(sub, common)
    return p


def _unloadable(name: str, module: str, error: ImportError) -> Command:
    def run(args: argparse.Namespace) -> int:
        raise CLIError(f"cannot load the '{name}' command ({module}): {error}", 1)

    return run


def main(argv: Sequence[str] | None = None) -> int:
    # Whatever the umask: the config, keys, database and messages are not for other users.
    restrict_umask()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as e:
        print(f"mailwright: {e}", file=sys.stderr)
        return 2
    except CLIError as e:
        print(f"mailwright: {e}", file=sys.stderr)
        return e.code
    except StoreError as e:
        print(f"mailwright: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `mailwright ... | head`
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0
    except Exception as e:
        if getattr(args, "debug", False):
            raise
        print(f"mailwright: error: {e} (run with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
