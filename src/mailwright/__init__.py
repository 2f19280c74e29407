"""Mailwright: a complete email server."""

import warnings

__version__ = "0.1.0"

# dnspython's DNSSEC module names cryptography's DSA classes when it is imported; cryptography 51
# deprecates DSA and warns about that import on stderr, which would land in every command's output
# (and `mailwright ... | tool` must print only its result). DSA (RFC 2536) is not an algorithm a
# validator should trust anyway: dns/dnssec.py never accepts it.
warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"dns\.dnssecalgs\.dsa")
