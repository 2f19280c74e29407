"""Tokens to the syntax tree (RFC 5228 8.2 grammar); nothing here knows what a command means.

Nesting is bounded (`MAX_DEPTH`) so that a script of ten thousand `not` cannot exhaust the
Python stack; the validator then checks meaning.
"""

from __future__ import annotations

from .ast import Argument, Command, Number, Script, StringList, Tag, Test
from .lexer import Kind, SieveSyntaxError, Token, tokenize

MAX_DEPTH = 64


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind is not Kind.EOF:
            self.pos += 1
        return tok

    def is_special(self, char: str) -> bool:
        tok = self.peek()
        return tok.kind is Kind.SPECIAL and tok.text == char

    def expect(self, char: str, what: str) -> Token:
        tok = self.take()
        if tok.kind is not Kind.SPECIAL or tok.text != char:
            raise SieveSyntaxError(tok.line, f"expected {what}, found {_describe(tok)}")
        return tok

    def commands(self, depth: int, in_block: bool, opened: int = 0) -> tuple[Command, ...]:
        out: list[Command] = []
        while True:
            tok = self.peek()
            if tok.kind is Kind.EOF:
                if in_block:
                    raise SieveSyntaxError(
                        tok.line, f"missing '}}' for the block opened at line {opened}"
                    )
                return tuple(out)
            if in_block and self.is_special("}"):
                return tuple(out)
            out.append(self.command(depth))

    def command(self, depth: int) -> Command:
        tok = self.take()
        if tok.kind is not Kind.IDENTIFIER:
            raise SieveSyntaxError(tok.line, f"expected a command, found {_describe(tok)}")
        if depth > MAX_DEPTH:
            raise SieveSyntaxError(tok.line, "blocks nested too deeply")
        args, tests = self.arguments(depth)
        if self.is_special(";"):
            self.take()
            return Command(tok.text, args, tests, None, tok.line)
        if self.is_special("{"):
            brace = self.take()
            block = self.commands(depth + 1, True, brace.line)
            self.expect("}", "'}'")
            return Command(tok.text, args, tests, block, tok.line)
        nxt = self.peek()
        raise SieveSyntaxError(nxt.line, f"expected ';' or '{{' after {tok.text}, found {_describe(nxt)}")

    def arguments(self, depth: int) -> tuple[tuple[Argument, ...], tuple[Test, ...]]:
        args: list[Argument] = []
        while True:
            tok = self.peek()
            if tok.kind is Kind.TAG:
                self.take()
                args.append(Tag(tok.text, tok.line))
            elif tok.kind is Kind.NUMBER:
                self.take()
                args.append(Number(tok.number, tok.line))
            elif tok.kind is Kind.STRING:
                self.take()
                args.append(StringList((tok.text,), True, tok.line))
            elif self.is_special("["):
                args.append(self.string_list())
            else:
                break
        tests: tuple[Test, ...] = ()
        if self.is_special("("):
            tests = self.test_list(depth)
        elif self.peek().kind is Kind.IDENTIFIER:
            tests = (self.test(depth),)
        return tuple(args), tests

    def string_list(self) -> StringList:
        open_tok = self.expect("[", "'['")
        values: list[str] = []
        while True:
            tok = self.take()
            if tok.kind is not Kind.STRING:
                raise SieveSyntaxError(tok.line, f"expected a string in list, found {_describe(tok)}")
            values.append(tok.text)
            if self.is_special(","):
                self.take()
                continue
            self.expect("]", "',' or ']'")
            return StringList(tuple(values), False, open_tok.line)

    def test_list(self, depth: int) -> tuple[Test, ...]:
        self.expect("(", "'('")
        tests = [self.test(depth)]
        while self.is_special(","):
            self.take()
            tests.append(self.test(depth))
        self.expect(")", "',' or ')'")
        return tuple(tests)

    def test(self, depth: int) -> Test:
        tok = self.take()
        if tok.kind is not Kind.IDENTIFIER:
            raise SieveSyntaxError(tok.line, f"expected a test, found {_describe(tok)}")
        if depth > MAX_DEPTH:
            raise SieveSyntaxError(tok.line, "tests nested too deeply")
        args, tests = self.arguments(depth + 1)
        return Test(tok.text, args, tests, tok.line)


def _describe(tok: Token) -> str:
    if tok.kind is Kind.EOF:
        return "end of script"
    if tok.kind is Kind.STRING:
        return "a string"
    if tok.kind is Kind.TAG:
        return f"':{tok.text}'"
    return f"'{tok.text}'"


def parse(source: str | bytes) -> Script:
    """The syntax tree of a script; raises SieveSyntaxError with the line at fault."""
    parser = _Parser(tokenize(source))
    return Script(parser.commands(0, False))
