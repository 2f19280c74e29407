"""Certificates from an ACME server (RFC 8555): the client and the renewing manager."""
