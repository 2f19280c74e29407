"""What is kept of a message after the one parse at delivery (issue 2, item 7).

Everything is plain data so it serialises and back without loss: the stored form
(`MessageInfo.to_meta`) is a binary head and JSON sections read lazily; `to_json` is the older
single-document form, still read. Byte strings from headers are kept as bytes (real mail has
8-bit and broken bytes there, and IMAP returns them unchanged); in JSON they travel as Latin-1
strings, which maps every byte to one code point.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

# Part kinds, mirroring how an IMAP server has to render the part (RFC 9051 7.5.2).
KIND_TEXT = "t"  # text/*, or defaulted to text/plain: BODYSTRUCTURE carries a line count
KIND_MESSAGE = "m"  # message/rfc822 (or defaulted inside multipart/digest): one child message
KIND_MULTIPART = "M"  # multipart/*: children
KIND_OTHER = "o"  # anything else

Param = tuple[bytes, bytes]


@dataclass(frozen=True, slots=True)
class Address:
    """One ENVELOPE address (RFC 9051 7.5.2); group markers have host None."""

    name: bytes | None
    route: bytes | None
    mailbox: bytes | None
    host: bytes | None


@dataclass(slots=True)
class Envelope:
    """RFC 9051 7.5.2 ENVELOPE fields; strings raw and unfolded, None when the header is absent."""

    date: bytes | None = None
    subject: bytes | None = None
    from_: tuple[Address, ...] | None = None
    sender: tuple[Address, ...] | None = None
    reply_to: tuple[Address, ...] | None = None
    to: tuple[Address, ...] | None = None
    cc: tuple[Address, ...] | None = None
    bcc: tuple[Address, ...] | None = None
    in_reply_to: bytes | None = None
    message_id: bytes | None = None
    # Not part of ENVELOPE, but THREAD=REFERENCES (RFC 5256) needs it cheaply.
    references: bytes | None = None
    # The first Date: and Subject: fields (ENVELOPE shows the last ones); SORT, THREAD and
    # SENT* use these, as Dovecot does, so that results agree when a message has two.
    date_first: bytes | None = None
    subject_first: bytes | None = None


@dataclass(slots=True)
class Part:
    """One MIME part with offsets into the stored (CRLF) message.

    header_start..body_start is the part's header including the blank line (BODY[n.MIME]),
    body_start..end its body (BODY[n]); sizes and line counts follow from the offsets.
    """

    header_start: int
    body_start: int = 0
    end: int = 0
    lines: int = 0
    kind: str = KIND_TEXT
    # None: no (usable) Content-Type header. b"": one that could not be parsed.
    mtype: bytes | None = None
    subtype: bytes | None = None
    params: tuple[Param, ...] | None = None
    content_id: bytes | None = None
    description: bytes | None = None
    cte: bytes | None = None
    # When Content-Transfer-Encoding is present but not a clean token (cte == b""): its
    # first token, still worth trying for BINARY ("base64;" means base64).
    cte_hint: bytes | None = None
    md5: bytes | None = None
    disposition: bytes | None = None
    disposition_params: tuple[Param, ...] | None = None
    language: tuple[bytes, ...] | None = None
    location: bytes | None = None
    has_nuls: bool = False
    children: list[Part] = field(default_factory=list)
    # For the message inside a message/rfc822 part (and the top-level message).
    envelope: Envelope | None = None

    @property
    def body_size(self) -> int:
        return self.end - self.body_start

    @property
    def header_size(self) -> int:
        return self.body_start - self.header_start


class MessageInfo:
    """The parse-once result: part tree, envelope and sort/search keys of one message.

    Read back from the store (`from_meta`), it is decoded lazily: the stored form keeps the
    size and the header's end in a fixed binary header and the SEARCH field cache, the
    envelope and the part tree as separate sections, each decoded only when first asked for,
    so a SEARCH FROM reads a few hundred bytes of decoded fields, SORT and THREAD the envelope
    alone, and only BODYSTRUCTURE and section FETCHes pay for the tree.
    """

    __slots__ = ("_env", "_env_data", "_header_end", "_problems", "_root", "_tree_data",
                 "search_fields", "size")

    def __init__(self, size: int, root: Part | None = None, problems: tuple[str, ...] = ()) -> None:
        self.size = size
        self._root = root
        self._problems = problems
        self._header_end = root.body_start if root is not None else 0
        self._env: Envelope | None = None
        self._env_data: bytes | None = None
        self._tree_data: bytes | None = None
        #: decoded top-header fields by lower-case name (mime/searchfields.py), when the meta
        #: kept them; None for a message stored before they were kept
        self.search_fields: dict[bytes, list[str]] | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MessageInfo):
            return NotImplemented
        return (self.size, self.root, self.problems) == (other.size, other.root, other.problems)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"MessageInfo(size={self.size!r}, root={self.root!r}, problems={self.problems!r})"

    @property
    def root(self) -> Part:
        if self._root is None:
            doc = json.loads(self._tree_data or b"{}")
            root = _part_from(doc["root"])
            root.envelope = self.envelope
            self._problems = tuple(doc.get("problems", ()))
            self._root = root
            self._tree_data = None
        return self._root

    @root.setter
    def root(self, value: Part) -> None:
        self._root = value
        self._header_end = value.body_start
        self._env = None

    @property
    def problems(self) -> tuple[str, ...]:
        if self._root is None:
            self.root  # noqa: B018 - the problems travel with the tree
        return self._problems

    @property
    def envelope(self) -> Envelope:
        if self._root is not None:
            env = self._root.envelope
            return env if env is not None else Envelope()
        if self._env is None:
            self._env = _env_from(json.loads(self._env_data)) if self._env_data else Envelope()
            self._env_data = None
        return self._env

    @property
    def header_end(self) -> int:
        return self._header_end

    def to_json(self) -> bytes:
        doc = {"v": 1, "size": self.size, "root": _part_to(self.root)}
        if self.problems:
            doc["problems"] = list(self.problems)
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode("ascii")

    @classmethod
    def from_json(cls, data: bytes) -> MessageInfo:
        doc = json.loads(data)
        return cls(
            size=int(doc["size"]),
            root=_part_from(doc["root"]),
            problems=tuple(doc.get("problems", ())),
        )

    def to_meta(self, search_fields: dict[bytes, list[str]] | None = None) -> bytes:
        """The stored form: ``MW2``, then size, header end and the three section lengths
        (big-endian, `_META_HEAD`), then the sections: search fields, envelope, tree (JSON
        each, the tree without the top envelope, which is the envelope section)."""
        root = _part_to(self.root)
        env = root.pop("env", None) or {}
        tree: dict[str, Any] = {"root": root}
        if self.problems:
            tree["problems"] = list(self.problems)
        fields = {k.decode("latin-1"): v for k, v in (search_fields or {}).items()}
        sections = [
            json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
            _dumps(env),
            _dumps(tree),
        ]
        head = _META_HEAD.pack(_META_MAGIC, self.size, self.header_end,
                               *(len(x) for x in sections))
        return head + b"".join(sections)

    @classmethod
    def from_meta(cls, data: bytes) -> MessageInfo:
        """Read either stored form: the sectioned one (`to_meta`, decoded lazily) or the
        JSON of messages stored before it (`to_json`). ValueError when it is neither."""
        if not data.startswith(_META_MAGIC):
            return cls.from_json(data)
        if len(data) < _META_HEAD.size:
            raise ValueError("meta too short")
        _magic, size, header_end, n_fields, n_env, n_tree = _META_HEAD.unpack_from(data)
        start = _META_HEAD.size
        if start + n_fields + n_env + n_tree != len(data):
            raise ValueError("meta sections do not add up")
        info = cls(size)
        info._header_end = header_end
        fields = json.loads(data[start : start + n_fields])
        info.search_fields = {k.encode("latin-1"): v for k, v in fields.items()}
        start += n_fields
        info._env_data = data[start : start + n_env]
        info._tree_data = data[start + n_env :]
        return info


_META_MAGIC = b"MW2"
_META_HEAD = struct.Struct(">3sQQIII")


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode("ascii")


# --- JSON mapping: short keys, absent keys mean defaults -------------------------------------


def _b(v: bytes | None) -> str | None:
    return None if v is None else v.decode("latin-1")


def _ub(v: Any) -> bytes | None:
    return None if v is None else str(v).encode("latin-1")


def _params_to(p: tuple[Param, ...] | None) -> list[list[str]] | None:
    if p is None:
        return None
    return [[k.decode("latin-1"), v.decode("latin-1")] for k, v in p]


def _params_from(p: Any) -> tuple[Param, ...] | None:
    if p is None:
        return None
    return tuple((str(k).encode("latin-1"), str(v).encode("latin-1")) for k, v in p)


def _addrs_to(a: tuple[Address, ...] | None) -> list[list[str | None]] | None:
    if a is None:
        return None
    return [[_b(x.name), _b(x.route), _b(x.mailbox), _b(x.host)] for x in a]


def _addrs_from(a: Any) -> tuple[Address, ...] | None:
    if a is None:
        return None
    return tuple(Address(_ub(x[0]), _ub(x[1]), _ub(x[2]), _ub(x[3])) for x in a)


_ENV_STR = ("date", "subject", "in_reply_to", "message_id", "references", "date_first",
            "subject_first")
_FIRSTS = {"date_first": "date", "subject_first": "subject"}
_ENV_ADDR = ("from_", "sender", "reply_to", "to", "cc", "bcc")


def _env_to(e: Envelope) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _ENV_STR:
        v = getattr(e, name)
        if v is not None and not (name in _FIRSTS and v == getattr(e, _FIRSTS[name])):
            out[name] = _b(v)
    for name in _ENV_ADDR:
        v = getattr(e, name)
        if v is not None:
            out[name] = _addrs_to(v)
    return out


def _env_from(d: dict[str, Any]) -> Envelope:
    e = Envelope()
    for name in _ENV_STR:
        if name in d:
            setattr(e, name, _ub(d[name]))
    for name in _ENV_ADDR:
        if name in d:
            setattr(e, name, _addrs_from(d[name]))
    for first, last in _FIRSTS.items():
        if getattr(e, first) is None:
            setattr(e, first, getattr(e, last))  # stored only when it differs
    return e


_PART_BYTES = ("mtype", "subtype", "content_id", "description", "cte", "cte_hint", "md5",
               "disposition", "location")


def _part_to(p: Part) -> dict[str, Any]:
    d: dict[str, Any] = {"h": p.header_start, "b": p.body_start, "e": p.end, "l": p.lines,
                         "k": p.kind}
    for name in _PART_BYTES:
        v = getattr(p, name)
        if v is not None:
            d[name] = _b(v)
    if p.params is not None:
        d["params"] = _params_to(p.params)
    if p.disposition_params is not None:
        d["dparams"] = _params_to(p.disposition_params)
    if p.language is not None:
        d["lang"] = [x.decode("latin-1") for x in p.language]
    if p.has_nuls:
        d["nul"] = 1
    if p.children:
        d["c"] = [_part_to(c) for c in p.children]
    if p.envelope is not None:
        d["env"] = _env_to(p.envelope)
    return d


def _part_from(d: dict[str, Any]) -> Part:
    p = Part(header_start=int(d["h"]), body_start=int(d["b"]), end=int(d["e"]),
             lines=int(d["l"]), kind=str(d["k"]))
    for name in _PART_BYTES:
        if name in d:
            setattr(p, name, _ub(d[name]))
    if "params" in d:
        p.params = _params_from(d["params"])
    if "dparams" in d:
        p.disposition_params = _params_from(d["dparams"])
    if "lang" in d:
        p.language = tuple(str(x).encode("latin-1") for x in d["lang"])
    p.has_nuls = bool(d.get("nul", 0))
    p.children = [_part_from(c) for c in d.get("c", ())]
    if "env" in d:
        p.envelope = _env_from(d["env"])
    return p
