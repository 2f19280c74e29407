"""Outbound delivery: the persistent queue, the SMTP client driver and delivery status reports.

RFC 5321 4.5.4 (retries) and 5.1 (MX), RFC 3461/3464 (DSN). Modules:

* ``service``: ``Outbound``, the queue service built by ``app.build_context`` through
  ``create_outbound(ctx)``; ``ctx.outbound.enqueue(...)`` is what the submission session calls::

      ids = await ctx.outbound.enqueue(
          staged_blob,                 # StagedBlob from the store's BlobWriter
          "alice@example.test",        # reverse-path, "" for the null sender
          [Recipient("bob@remote.test", notify=("FAILURE",), orcpt=("rfc822", "bob@remote.test")),
           "carol@remote.test",        # plain addresses work too, and (address, RcptParams)
          ],
          ret="HDRS", envid="...",     # MAIL FROM DSN parameters, optional
      )

  The worker (``start()``/``stop()``, run by ``app.run_server``) claims due entries with a lease,
  delivers them with per-domain and global connection limits, retries on
  ``[outbound] retry_schedule`` and bounces at ``max_age``.
* ``smtp``: ``OutboundClient.connect(domain) -> SMTPSession`` (MX walk, STARTTLS, RFC 5321
  timeouts, next MX on failure) and ``SMTPSession.send(envelope, message) -> [RecipientResult]``.
* ``bounce``: ``build_dsn(...)`` and ``wants_notification(notify, action)``.
"""

from __future__ import annotations

from mailwright.proto.smtpclient import Recipient

__all__ = ["Recipient"]
