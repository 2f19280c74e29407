"""The layering rules of docs/architecture.md, checked on every module's imports.

Imports go downward only: the protocol cores and the MIME parser know nothing above them; the
store knows no protocol; session logic and domain services know the Store interface, never a
backend; nothing but `app` and `cli` wires the network layer.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

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
