"""What each command and test accepts, and which capability it needs (the SIEVE capability list).

One table for the whole language: the validator reads it to check a script at upload, the
interpreter trusts what the validator let through, ManageSieve advertises `CAPABILITIES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The capabilities `require` accepts, in the order ManageSieve advertises them (RFC 5804 1.7).
CAPABILITIES: tuple[str, ...] = (
    "fileinto", "reject", "ereject", "envelope", "encoded-character", "vacation",
    "vacation-seconds", "subaddress", "comparator-i;ascii-numeric", "relational", "regex",
    "imap4flags", "copy", "include", "body", "variables", "enotify", "mailbox", "date", "index",
    "duplicate", "editheader", "spamtest", "spamtestplus", "virustest", "special-use",
)

COMPARATORS = ("i;octet", "i;ascii-casemap", "i;ascii-numeric")
RELATIONAL_OPS = ("gt", "ge", "lt", "le", "eq", "ne")
NOTIFY_METHODS = ("mailto",)
DATE_PARTS = (
    "year", "month", "day", "date", "julian", "hour", "minute", "second", "time", "iso8601",
    "std11", "zone", "weekday",
)


@dataclass(frozen=True, slots=True)
class TagSpec:
    value: str | None = None  # None (a flag), "number", "string", "strlist"
    group: str | None = None  # tags of one group exclude each other
    ext: str | None = None  # capability the tag needs


@dataclass(frozen=True, slots=True)
class Spec:
    ext: str | None
    positional: tuple[str, ...] = ()  # "string", "strlist", "number"
    optional_leading: int = 0  # how many leading positional arguments may be absent
    optional_trailing: int = 0  # how many trailing positional arguments may be absent
    tags: dict[str, TagSpec] = field(default_factory=dict)
    tests: str = "none"  # "none", "one", "many"
    block: bool = False


COMPARATOR = {"comparator": TagSpec("string", "comparator")}
MATCH = {
    "is": TagSpec(None, "match"),
    "contains": TagSpec(None, "match"),
    "matches": TagSpec(None, "match"),
    "regex": TagSpec(None, "match", "regex"),
    "value": TagSpec("string", "match", "relational"),
    "count": TagSpec("string", "match", "relational"),
}
ADDRESS_PART = {
    "all": TagSpec(None, "address-part"),
    "localpart": TagSpec(None, "address-part"),
    "domain": TagSpec(None, "address-part"),
    "user": TagSpec(None, "address-part", "subaddress"),
    "detail": TagSpec(None, "address-part", "subaddress"),
}
INDEX = {
    "index": TagSpec("number", "index", "index"),
    "last": TagSpec(None, "last", "index"),
}
ZONE = {
    "zone": TagSpec("string", "zone", "date"),
    "originalzone": TagSpec(None, "zone", "date"),
}
FLAGS = {"flags": TagSpec("strlist", "flags", "imap4flags")}
COPY = {"copy": TagSpec(None, "copy", "copy")}

SET_MODIFIERS = {
    "lower": 40, "upper": 40, "lowerfirst": 30, "upperfirst": 30,
    "quotewildcard": 20, "quoteregex": 20, "encodeurl": 15, "length": 10,
}

COMMANDS: dict[str, Spec] = {
    "require": Spec(None, ("strlist",)),
    "if": Spec(None, tests="one", block=True),
    "elsif": Spec(None, tests="one", block=True),
    "else": Spec(None, block=True),
    "stop": Spec(None),
    "keep": Spec(None, tags={**FLAGS}),
    "discard": Spec(None),
    "redirect": Spec(None, ("string",), tags={**COPY}),
    "fileinto": Spec("fileinto", ("string",), tags={
        **COPY, **FLAGS,
        "create": TagSpec(None, "create", "mailbox"),
        "specialuse": TagSpec("string", "specialuse", "special-use"),
    }),
    "reject": Spec("reject", ("string",)),
    "ereject": Spec("ereject", ("string",)),
    "vacation": Spec("vacation", ("string",), tags={
        "days": TagSpec("number", "period"),
        "seconds": TagSpec("number", "period", "vacation-seconds"),
        "subject": TagSpec("string", "subject"),
        "from": TagSpec("string", "from"),
        "addresses": TagSpec("strlist", "addresses"),
        "mime": TagSpec(None, "mime"),
        "handle": TagSpec("string", "handle"),
    }),
    "set": Spec("variables", ("string", "string"), tags={
        name: TagSpec(None, None, "enotify" if name == "encodeurl" else
                      "regex" if name == "quoteregex" else None)
        for name in SET_MODIFIERS
    }),
    "setflag": Spec("imap4flags", ("string", "strlist"), optional_leading=1),
    "addflag": Spec("imap4flags", ("string", "strlist"), optional_leading=1),
    "removeflag": Spec("imap4flags", ("string", "strlist"), optional_leading=1),
    "include": Spec("include", ("string",), tags={
        "personal": TagSpec(None, "location"),
        "global": TagSpec(None, "location"),
        "once": TagSpec(None, "once"),
        "optional": TagSpec(None, "optional"),
    }),
    "return": Spec("include"),
    "global": Spec("include", ("strlist",)),
    "addheader": Spec("editheader", ("string", "string"), tags={"last": TagSpec(None, "last")}),
    "deleteheader": Spec("editheader", ("string", "strlist"), optional_trailing=1, tags={
        **COMPARATOR, **MATCH,
        "index": TagSpec("number", "index"),
        "last": TagSpec(None, "last"),
    }),
    "notify": Spec("enotify", ("string",), tags={
        "from": TagSpec("string", "from"),
        "importance": TagSpec("string", "importance"),
        "options": TagSpec("strlist", "options"),
        "message": TagSpec("string", "message"),
    }),
}

TESTS: dict[str, Spec] = {
    "address": Spec(None, ("strlist", "strlist"), tags={**COMPARATOR, **MATCH, **ADDRESS_PART, **INDEX}),
    "envelope": Spec("envelope", ("strlist", "strlist"), tags={**COMPARATOR, **MATCH, **ADDRESS_PART}),
    "header": Spec(None, ("strlist", "strlist"), tags={**COMPARATOR, **MATCH, **INDEX}),
    "exists": Spec(None, ("strlist",)),
    "size": Spec(None, ("number",), tags={
        "over": TagSpec(None, "size"), "under": TagSpec(None, "size"),
    }),
    "not": Spec(None, tests="one"),
    "anyof": Spec(None, tests="many"),
    "allof": Spec(None, tests="many"),
    "true": Spec(None),
    "false": Spec(None),
    "body": Spec("body", ("strlist",), tags={
        **COMPARATOR, **MATCH,
        "raw": TagSpec(None, "transform"),
        "content": TagSpec("strlist", "transform"),
        "text": TagSpec(None, "transform"),
    }),
    "string": Spec("variables", ("strlist", "strlist"), tags={**COMPARATOR, **MATCH}),
    "date": Spec("date", ("string", "string", "strlist"), tags={**COMPARATOR, **MATCH, **ZONE, **INDEX}),
    "currentdate": Spec("date", ("string", "strlist"), tags={
        **COMPARATOR, **MATCH, "zone": TagSpec("string", "zone"),
    }),
    "duplicate": Spec("duplicate", tags={
        "handle": TagSpec("string", "handle"),
        "header": TagSpec("string", "id"),
        "uniqueid": TagSpec("string", "id"),
        "seconds": TagSpec("number", "seconds"),
        "last": TagSpec(None, "last"),
    }),
    "mailboxexists": Spec("mailbox", ("strlist",)),
    "specialuse_exists": Spec("special-use", ("string", "strlist"), optional_leading=1),
    "hasflag": Spec("imap4flags", ("strlist", "strlist"), optional_leading=1,
                    tags={**COMPARATOR, **MATCH}),
    "spamtest": Spec("spamtest", ("string",), tags={
        **COMPARATOR, **MATCH, "percent": TagSpec(None, "percent", "spamtestplus"),
    }),
    "virustest": Spec("virustest", ("string",), tags={**COMPARATOR, **MATCH}),
    "valid_notify_method": Spec("enotify", ("strlist",)),
    "notify_method_capability": Spec("enotify", ("string", "string", "strlist"),
                                     tags={**COMPARATOR, **MATCH}),
}
