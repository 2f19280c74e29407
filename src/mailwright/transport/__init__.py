"""Transport security between mail servers, one module per standard.

* ``mtasts``: MTA-STS (RFC 8461), the policy a domain publishes over HTTPS;
* ``dane``: DANE for SMTP (RFC 7672), TLSA records checked against the server's certificate;
* ``tlsrpt``: SMTP TLS Reporting (RFC 8460), the aggregate report format and its transport;
* ``https``: the bounded HTTPS client the other three share (policy fetch, report POST).

These modules know the resolver (``mailwright.dns``) and nothing above it; the outbound queue
(``mailwright.queue``) applies them and records what happened.
"""
