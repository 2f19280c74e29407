"""Sieve mail filtering (RFC 5228 and its extensions), sans-I/O.

`compile_script` parses and validates a script (errors carry a line number);
`run_script` evaluates one against a message and returns the actions to carry out.
Modules: `lexer` (tokens), `parser` (syntax tree), `extensions` (what each command and test
accepts), `validator` (upload-time checks), `message` (the message as tests see it),
`matching` and `regex` (comparators, match types), `datetest`, `interpreter`, `actions`,
`vacation` (RFC 3834 rules and the reply). The delivery code in `mailwright.sieve.filter`
connects it to the store and the outbound queue.
"""

from __future__ import annotations

from .actions import RunResult
from .extensions import CAPABILITIES
from .interpreter import Environment, Limits, NullEnvironment, ScoreHeaders, run_script
from .lexer import SieveSyntaxError
from .message import Envelope, SieveMessage
from .validator import CompiledScript, compile_script

__all__ = [
    "CAPABILITIES", "CompiledScript", "Envelope", "Environment", "Limits", "NullEnvironment",
    "RunResult", "ScoreHeaders", "SieveMessage", "SieveSyntaxError", "compile_script", "run_script",
]
