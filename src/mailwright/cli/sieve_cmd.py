"""`mailwright sieve put|activate|list|del|get|check`: a user's Sieve scripts.

The same store ManageSieve uses, so the commands work whether or not the server runs; a script
is validated before it is stored, and an invalid one is refused with its line (exit 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mailwright.cli.common import CLIError, load, with_store
from mailwright.cli.roles import SieveAdmin
from mailwright.config import Config
from mailwright.sieve import SieveSyntaxError, compile_script
from mailwright.store.api import Account, AccountLookup, InvalidOperation, NotFound


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               common: argparse.ArgumentParser) -> None:
    s = sub.add_parser("sieve", parents=[common], help="users' Sieve filter scripts")
    ssub = s.add_subparsers(dest="action", required=True)
    x = ssub.add_parser("put", parents=[common], help="store (or replace) a script from FILE")
    x.add_argument("address")
    x.add_argument("name")
    x.add_argument("file", help="the script, or - for standard input")
    x.add_argument("--activate", action="store_true", help="also make it the active script")
    x = ssub.add_parser("activate", parents=[common], help="make NAME the active script")
    x.add_argument("address")
    x.add_argument("name")
    x = ssub.add_parser("deactivate", parents=[common], help="no active script")
    x.add_argument("address")
    x = ssub.add_parser("list", parents=[common], help="the scripts, the active one marked")
    x.add_argument("address")
    x = ssub.add_parser("get", parents=[common], help="print a script")
    x.add_argument("address")
    x.add_argument("name")
    x = ssub.add_parser("del", parents=[common], help="delete a script (not the active one)")
    x.add_argument("address")
    x.add_argument("name")
    x = ssub.add_parser("check", parents=[common], help="validate a script file")
    x.add_argument("file")
    s.set_defaults(func=cmd_sieve)


def check_global_scripts(config: Config) -> list[str]:
    """`mailwright check`: the administrator's before/after scripts exist and compile."""
    problems = []
    for key, path in (("before", config.sieve.before), ("after", config.sieve.after)):
        if path is None:
            continue
        try:
            compile_script(path.read_bytes())
        except OSError as exc:
            problems.append(f"{config.source}: sieve.{key}: cannot read {path}: {exc.strerror}")
        except SieveSyntaxError as exc:
            problems.append(f"{config.source}: sieve.{key}: {path}: line {exc.line}: {exc.message}")
    return problems


def _read(path: str) -> str:
    try:
        if path == "-":
            stdin = getattr(sys.stdin, "buffer", None)
            raw = stdin.read() if stdin is not None else sys.stdin.read().encode()
        else:
            raw = Path(path).read_bytes()
    except OSError as exc:
        raise CLIError(f"sieve: cannot read {path}: {exc.strerror}", 1) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CLIError(f"sieve: {path}: not UTF-8 text", 1) from None


def _validate(path: str, text: str) -> None:
    try:
        compile_script(text)
    except SieveSyntaxError as exc:
        raise CLIError(f"sieve: {path}: line {exc.line}: {exc.message}", 1) from None


async def _account(store: AccountLookup, address: str) -> Account:
    account = await store.find_account(address.lower())
    if account is None:
        raise CLIError(f"sieve: no account {address}", 1)
    return account


def cmd_sieve(args: argparse.Namespace) -> int:
    if args.action == "check":
        _validate(args.file, _read(args.file))
        print(f"{args.file}: valid")
        return 0
    config = load(args)
    if args.action == "put":
        text = _read(args.file)
        _validate(args.file, text)
        if len(text.encode()) > config.sieve.max_script_size:
            raise CLIError(f"sieve: {args.file}: larger than [sieve] max_script_size"
                           f" ({config.sieve.max_script_size} octets)", 1)

        async def put(store: SieveAdmin) -> None:
            account = await _account(store, args.address)
            names = {s.name for s in await store.sieve_list(account.id)}
            if args.name not in names and len(names) >= config.sieve.max_scripts:
                raise CLIError(f"sieve: {args.address} has {len(names)} scripts, the most"
                               " [sieve] max_scripts allows", 1)
            await store.sieve_put(account.id, args.name, text)
            if args.activate:
                await store.sieve_activate(account.id, args.name)

        with_store(config, put)
        print(f"stored {args.name} for {args.address}" + (" (active)" if args.activate else ""))
        return 0
    if args.action in ("activate", "deactivate"):
        name = args.name if args.action == "activate" else None

        async def activate(store: SieveAdmin) -> None:
            account = await _account(store, args.address)
            try:
                await store.sieve_activate(account.id, name)
            except NotFound:
                raise CLIError(f"sieve: {args.address} has no script {name!r}", 1) from None

        with_store(config, activate)
        print(f"active script of {args.address}: {name or '(none)'}")
        return 0
    if args.action == "list":

        async def listing(store: SieveAdmin) -> list[tuple[str, bool, int]]:
            account = await _account(store, args.address)
            return [(s.name, s.active, s.size) for s in await store.sieve_list(account.id)]

        for name, active, size in with_store(config, listing):
            print(f"{name}{' ACTIVE' if active else ''} {size}")
        return 0
    if args.action == "get":

        async def get(store: SieveAdmin) -> str | None:
            return await store.sieve_get((await _account(store, args.address)).id, args.name)

        content = with_store(config, get)
        if content is None:
            raise CLIError(f"sieve: {args.address} has no script {args.name!r}", 1)
        sys.stdout.write(content)
        return 0

    async def delete(store: SieveAdmin) -> None:
        account = await _account(store, args.address)
        try:
            await store.sieve_delete(account.id, args.name)
        except NotFound:
            raise CLIError(f"sieve: {args.address} has no script {args.name!r}", 1) from None
        except InvalidOperation:
            raise CLIError(f"sieve: {args.name} is the active script; activate another"
                           " or deactivate first", 1) from None

    with_store(config, delete)
    print(f"deleted {args.name} of {args.address}")
    return 0
