"""Mailwright's benchmark harness: ``python -m bench`` (see docs/benchmarks.md).

The harness measures Mailwright side by side with reference servers (Postfix with Dovecot,
Dovecot, aiosmtpd) on the same machine, in one run, alternating runs so that machine noise
hits every server alike; ratios are computed pair by pair.
"""
