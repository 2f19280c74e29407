"""The Sieve syntax tree (RFC 5228 8.2): commands with arguments, tests and blocks.

Nodes are frozen so that a parsed script can be cached and shared by concurrent deliveries.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tag:
    name: str  # without the leading ':'
    line: int


@dataclass(frozen=True, slots=True)
class Number:
    value: int
    line: int


@dataclass(frozen=True, slots=True)
class StringList:
    """A string or a string list; `single` when written as one string, not in brackets."""

    values: tuple[str, ...]
    single: bool
    line: int


Argument = Tag | Number | StringList


@dataclass(frozen=True, slots=True)
class Test:
    name: str
    arguments: tuple[Argument, ...]
    tests: tuple[Test, ...]
    line: int


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    arguments: tuple[Argument, ...]
    tests: tuple[Test, ...]
    block: tuple[Command, ...] | None
    line: int


@dataclass(frozen=True, slots=True)
class Script:
    commands: tuple[Command, ...]
