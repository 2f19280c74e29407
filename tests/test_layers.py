"""The layering rules of docs/architecture.md, checked on every module's imports.

Imports go downward only: the protocol cores and the MIME parser know nothing above them; the
store knows no protocol; session logic and domain services know the Store interface, never a
backend; nothing but `app` and `cli` wires the network layer.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import sys
import typing
from pathlib import Path
from typing import Any

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mailwright"
STDLIB = sys.stdlib_module_names

# package -> prefixes of mailwright modules it must not import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "proto": ("mailwright.",),  # except mailwright.proto itself, see below
    "mime": ("mailwright.",),
    "store": ("mailwright.proto", "mailwright.smtpd", "mailwright.imapd", "mailwright.pop3d",
              "mailwright.queue", "mailwright.net", "mailwright.app", "mailwright.cli",
              "mailwright.mailauth", "mailwright.web"),
    "smtpd": ("mailwright.store.sqlite", "mailwright.store.postgres", "mailwright.app",
              "mailwright.cli"),
    "imapd": ("mailwright.store.sqlite", "mailwright.store.postgres", "mailwright.app",
              "mailwright.cli", "mailwright.smtpd", "mailwright.pop3d"),
    "pop3d": ("mailwright.store.sqlite", "mailwright.store.postgres", "mailwright.app",
              "mailwright.cli", "mailwright.smtpd", "mailwright.imapd"),
    "queue": ("mailwright.store.sqlite", "mailwright.store.postgres", "mailwright.app",
              "mailwright.cli", "mailwright.smtpd", "mailwright.imapd", "mailwright.pop3d",
              "mailwright.net"),
    "delivery": ("mailwright.store.sqlite", "mailwright.store.postgres", "mailwright.net",
                 "mailwright.app", "mailwright.cli"),
    "sieve": ("mailwright.store.sqlite", "mailwright.store.postgres", "mailwright.net",
              "mailwright.app", "mailwright.cli", "mailwright.smtpd", "mailwright.imapd",
              "mailwright.pop3d", "mailwright.managesieved"),
    "managesieved": ("mailwright.store.sqlite", "mailwright.store.postgres", "mailwright.app",
                     "mailwright.cli", "mailwright.smtpd", "mailwright.imapd", "mailwright.pop3d"),
    "accounts": ("mailwright.store.sqlite", "mailwright.store.postgres", "mailwright.net",
                 "mailwright.app", "mailwright.cli", "mailwright.proto"),
    "mailauth": ("mailwright.store", "mailwright.net", "mailwright.app", "mailwright.cli",
                 "mailwright.smtpd", "mailwright.imapd", "mailwright.pop3d"),
    "dns": ("mailwright.store", "mailwright.net", "mailwright.app", "mailwright.cli",
            "mailwright.smtpd", "mailwright.imapd", "mailwright.pop3d", "mailwright.queue"),
    "transport": ("mailwright.store", "mailwright.net", "mailwright.app", "mailwright.cli",
                  "mailwright.smtpd", "mailwright.imapd", "mailwright.pop3d", "mailwright.queue",
                  "mailwright.delivery"),
    "net": ("mailwright.store.sqlite", "mailwright.store.postgres", "mailwright.smtpd",
            "mailwright.imapd", "mailwright.pop3d", "mailwright.app", "mailwright.cli"),
}
# the store's rules and its transaction interface are the backends' business, like SQL
for _pkg in ("smtpd", "imapd", "pop3d", "queue", "delivery", "sieve", "managesieved", "accounts",
             "net"):
    FORBIDDEN[_pkg] = (*FORBIDDEN[_pkg], "mailwright.store.core")
ALLOWED_INSIDE = {"proto": "mailwright.proto", "mime": "mailwright.mime"}
THIRD_PARTY_FREE = {"proto", "mime"}  # stdlib only


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: list[str] = []
    pkg = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    typing_only: set[int] = set()  # `if TYPE_CHECKING:` imports are annotations, not coupling
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            typing_only |= {id(n) for child in node.body for n in ast.walk(child)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - node.level + 1]
                names.append(".".join([*base, node.module] if node.module else base))
            elif node.module:
                names.append(node.module)
    return names


def modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_layers_imports_go_downward(path: Path) -> None:
    top = path.relative_to(SRC).parts[0]
    top = top[:-3] if top.endswith(".py") else top
    rules = FORBIDDEN.get(top, ())
    inside = ALLOWED_INSIDE.get(top)
    for name in imports_of(path):
        if inside and name.startswith(inside):
            continue
        for bad in rules:
            assert not (name == bad.rstrip(".") or name.startswith(bad)), (
                f"{path.relative_to(SRC)} imports {name}, which its layer must not know"
            )
        if top in THIRD_PARTY_FREE and not name.startswith("mailwright"):
            assert name.split(".")[0] in STDLIB or name == "__future__", (
                f"{path.relative_to(SRC)} imports {name}: {top} is stdlib only"
            )


def test_sessions_never_touch_a_staged_blobs_file() -> None:
    """`StagedBlob._path` is the store's: outside `store/`, a staged blob is handed back to the
    store (`discard_staged`, `read_staged`), never opened or unlinked (issue 15)."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.is_relative_to(SRC / "store"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Attribute) and node.attr == "_path"
                    and not (isinstance(node.value, ast.Name) and node.value.id == "self")):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []


# --- the store's roles (issue 15 item 4) ---------------------------------------------------------
#
# `store.api` describes the store as roles (small protocols); `Store` is their composition, which
# the backends implement and `app` (and the CLI's `cli/common.py`) builds. Everything else asks
# for the roles it uses: one role, or an intersection of roles named in its package's `roles.py`
# (e.g. `imapd.roles.ImapStore`). The full store is handed over as it is and narrowed by type
# alone, and mypy proves each session calls nothing outside its roles; these tests hold the line
# that makes that proof mean something.

#: packages that never name the wide `Store` (modules relative to SRC that may: the wiring)
NARROW = ("imapd", "pop3d", "smtpd", "managesieved", "delivery", "queue", "sieve", "accounts",
          "spam", "web", "cli")
WIRING = {"cli/common.py"}  # opens the store for the operator commands, like app.py

#: (module, class, attribute) -> the role type it is annotated with
SESSION_STORES = {
    ("mailwright.imapd.session", "Session", "store"): "mailwright.imapd.roles.ImapStore",
    ("mailwright.pop3d.session", "Pop3Session", "store"): "mailwright.pop3d.roles.Pop3Store",
    ("mailwright.smtpd.session", "Services", "store"): "mailwright.smtpd.roles.SmtpStore",
    ("mailwright.managesieved.session", "ManageSieveSession", "store"):
        "mailwright.managesieved.roles.ManageSieveStore",
    ("mailwright.delivery.local", "LocalDelivery", "store"):
        "mailwright.delivery.roles.DeliveryStore",
    ("mailwright.queue.service", "Outbound", "store"): "mailwright.queue.roles.QueueStore",
    ("mailwright.sieve.delivery", "SieveFilter", "store"):
        "mailwright.sieve.roles.SieveDeliveryStore",
    ("mailwright.spam.service", "SpamFilter", "store"): "mailwright.spam.roles.SpamFilterStore",
    ("mailwright.accounts.authenticator", "Authenticator", "store"):
        "mailwright.accounts.roles.LoginStore",
    ("mailwright.web.roles", "WebContext", "store"): "mailwright.web.roles.WebStore",
}


def _narrow_modules() -> list[Path]:
    return [p for pkg in NARROW for p in sorted((SRC / pkg).rglob("*.py"))
            if str(p.relative_to(SRC)) not in WIRING]


def _wide_store_uses(path: Path) -> list[str]:
    """Where a module imports or names `store.api.Store` (in code or annotations)."""
    found = []
    tree = ast.parse(path.read_text(), str(path))
    api_aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "mailwright.store.api":
            found += [f"{node.lineno}: imports Store" for a in node.names if a.name == "Store"]
        elif isinstance(node, ast.ImportFrom) and node.module == "mailwright.store":
            api_aliases |= {a.asname or a.name for a in node.names if a.name == "api"}
        elif isinstance(node, ast.Import):
            api_aliases |= {a.asname for a in node.names
                            if a.name == "mailwright.store.api" and a.asname}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr == "Store"
                and isinstance(node.value, ast.Name) and node.value.id in api_aliases):
            found.append(f"{node.lineno}: {node.value.id}.Store")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and (
            node.value.strip() == "Store"
        ):
            found.append(f"{node.lineno}: a string annotation 'Store'")
    return found


@pytest.mark.parametrize("path", _narrow_modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_roles_sessions_never_name_the_wide_store(path: Path) -> None:
    """Sessions and services ask for roles; only the wiring holds the whole `Store`."""
    assert _wide_store_uses(path) == [], f"{path.relative_to(SRC)} names the wide Store"


def _api() -> Any:
    return importlib.import_module("mailwright.store.api")


def _roles_of_api() -> dict[str, type]:
    """The role protocols of `store.api`: every Protocol that `Store` composes."""
    api = _api()
    return {c.__name__: c for c in api.Store.__mro__
            if c not in (api.Store, typing.Protocol, typing.Generic, object)
            and getattr(c, "_is_protocol", False)}


def _members(proto: type) -> set[str]:
    """The public members a protocol asks for (methods, properties, attributes)."""
    names: set[str] = set()
    for c in proto.__mro__:
        if c in (typing.Protocol, typing.Generic, object):
            continue
        names |= {n for n in vars(c) if not n.startswith("_")}
        names |= {n for n in getattr(c, "__annotations__", {}) if not n.startswith("_")}
    return names


def _role_types() -> list[type]:
    """The intersections the packages name in their `roles.py`."""
    found = []
    for pkg in NARROW:
        path = SRC / pkg / "roles.py"
        if not path.exists():
            continue
        mod = importlib.import_module(f"mailwright.{pkg}.roles")
        found += [c for c in vars(mod).values() if isinstance(c, type)
                  and c.__module__ == mod.__name__ and getattr(c, "_is_protocol", False)]
    return found


def test_roles_store_is_exactly_its_roles() -> None:
    """`Store` adds nothing to its roles but the backend's life cycle (`open`, `close`)."""
    api = _api()
    from_roles = set().union(*(_members(r) for r in _roles_of_api().values()))
    assert _members(api.Store) - from_roles == {"open", "close"}
    assert {"Accounts", "AccountLookup", "Mailboxes", "Messages", "Queue", "Maintenance",
            "BlobStore", "Listings", "ChangeFeed"} <= set(_roles_of_api())


@pytest.mark.parametrize("proto", _role_types(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_roles_each_role_type_is_a_part_of_store(proto: type) -> None:
    """A package's role type only composes roles of `store.api` (or its package's other role
    types), declares nothing of its own, and is strictly narrower than `Store`: every member is
    `Store`'s very member, so the whole store satisfies it and nothing else is reachable."""
    api = _api()
    roles = set(_roles_of_api().values())
    mine = set(_role_types())
    WEB_CONTEXT = "mailwright.web.roles.WebContext"
    if f"{proto.__module__}.{proto.__name__}" == WEB_CONTEXT:
        return  # not a store: the web's read-only view of AppContext (its `store` is checked below)
    for base in proto.__bases__:
        assert base is typing.Protocol or base in roles or base in mine, (
            f"{proto.__name__} derives from {base.__name__}, not a role of store.api"
        )
        assert base is not api.Store
    own = {n for n in vars(proto) if not n.startswith("_")} | set(
        getattr(proto, "__annotations__", {}) if "__annotations__" in vars(proto) else ())
    assert own == set(), f"{proto.__name__} declares {own}: a role type only composes roles"
    members = _members(proto)
    store_members = _members(api.Store)
    assert members < store_members, f"{proto.__name__} is not narrower than Store"
    for name in members:
        if name in vars(api.Store) or any(name in vars(r) for r in roles):
            assert getattr(proto, name, None) is getattr(api.Store, name, None), name


@pytest.mark.parametrize("where", sorted(SESSION_STORES), ids=lambda w: f"{w[0]}.{w[1]}")
def test_roles_sessions_hold_their_role_type(where: tuple[str, str, str]) -> None:
    """Each session type's store is annotated with its package's role type (what mypy then
    holds every call against), not with `Store`."""
    module, cls_name, attr = where
    mod = importlib.import_module(module)
    cls = getattr(mod, cls_name)
    annotation = None
    for c in cls.__mro__:
        annotation = getattr(c, "__annotations__", {}).get(attr)
        if annotation is not None:
            break
    if annotation is None and isinstance(getattr(cls, attr, None), property):
        annotation = getattr(cls, attr).fget.__annotations__.get("return")
    if annotation is None:
        annotation = inspect.signature(cls.__init__).parameters[attr].annotation
    assert isinstance(annotation, str), "annotations are strings (from __future__ import)"
    target = SESSION_STORES[where]
    target_module, _, target_name = target.rpartition(".")
    expected = getattr(importlib.import_module(target_module), target_name)
    assert getattr(mod, annotation, None) is expected or annotation == expected.__name__, (
        f"{module}.{cls_name}.{attr} is annotated {annotation!r}, expected {target}"
    )
    assert annotation != "Store"


# --- every role method states its contract, and names what the code raises ----------------------

CONTRACT_WORDS = ("Read", "Atomic", "Not atomic", "Not a transaction")
IMPLEMENTATIONS = [*sorted((SRC / "store" / "core").glob("*.py")),
                   SRC / "store" / "sqlite" / "store.py", SRC / "store" / "postgres" / "store.py"]


def _role_methods() -> list[tuple[str, str]]:
    out = []
    for name, role in sorted(_roles_of_api().items()):
        out += [(name, m) for m, v in vars(role).items()
                if not m.startswith("_") and callable(v)]
    return out


@functools.cache
def _raises_index() -> dict[str, dict[str, set[str]]]:
    """method name -> file -> the `store.api` errors that method raises itself (`raise X(...)`
    in its body, the unit of work it defines included), over store/core and both backends."""
    api = _api()
    errors = {n for n, c in vars(api).items()
              if isinstance(c, type) and issubclass(c, api.StoreError) and c is not api.StoreError}
    found: dict[str, dict[str, set[str]]] = {}
    for path in IMPLEMENTATIONS:
        tree = ast.parse(path.read_text(), str(path))
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            for fn in cls.body:
                if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(fn):
                    if isinstance(node, ast.Raise) and node.exc is not None:
                        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                        name = getattr(exc, "id", None) or getattr(exc, "attr", None)
                        if name in errors:
                            found.setdefault(fn.name, {}).setdefault(
                                str(path.relative_to(SRC)), set()).add(name)
    return found


@pytest.mark.parametrize("role_method", _role_methods(), ids=lambda rm: ".".join(rm))
def test_roles_every_method_states_its_contract(role_method: tuple[str, str]) -> None:
    """The docstring says whether the method is a read or one transaction (see the words in
    `store.api`'s module docstring), and names every store error its implementations raise
    themselves: a contract that forgets a `raise` in store/core or a backend fails here."""
    role, method = role_method
    doc = " ".join((getattr(_roles_of_api()[role], method).__doc__ or "").split())
    assert any(w in doc for w in CONTRACT_WORDS), (
        f"{role}.{method}: say whether it is a Read or Atomic (one transaction)"
    )
    for where, raised in _raises_index().get(method, {}).items():
        for err in sorted(raised):
            assert err in doc or (err == "StorageFull"), (
                f"{role}.{method}: {where} raises {err}, which its contract does not name"
            )


def test_no_module_outside_the_store_reaches_blob_files() -> None:
    """Where message content lives is the blob storage's (store/blobstore.py): outside
    `store/`, no module imports the storage modules (but the pure LF -> CRLF normaliser),
    asks a store for its files, or makes a staged blob of its own from a path."""
    file_names = {"files", "blobs", "blob_dir", "tmp_dir", "path_for", "_blob_storage"}
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.is_relative_to(SRC / "store"):
            continue
        where = path.relative_to(SRC)
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in (
                "mailwright.store.blobs", "mailwright.store.blobstore",
                "mailwright.store.postgres.blobs",
            ):
                names = {a.name for a in node.names}
                if node.module != "mailwright.store.blobs" or names - {"CrlfNormalizer"}:
                    offenders.append(f"{where}:{node.lineno} imports {node.module}")
            if isinstance(node, ast.Attribute) and node.attr in file_names:
                owner = node.value
                name = owner.id if isinstance(owner, ast.Name) else (
                    owner.attr if isinstance(owner, ast.Attribute) else "")
                if "store" in name:
                    offenders.append(f"{where}:{node.lineno} {name}.{node.attr}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "StagedBlob"):
                offenders.append(f"{where}:{node.lineno} makes a StagedBlob")
    assert offenders == []
