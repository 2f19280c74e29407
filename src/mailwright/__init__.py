"""Mailwright: a complete email server."""

__version__ = "0.1.0"
