"""The store as local delivery sees it: the roles of `store.api` it uses, and no other.

`LocalDelivery.store` is typed `DeliveryStore`, a narrowing by type only of the `Store` that
`app` builds, so mypy proves that delivery stores a message through the one unit of work of
`FanOut.deliver_each` (local copies and queue entries together) and never through the
single-purpose writes of `Messages` or `Queue`. The helpers of this package ask for one role
each (`spool.stage`: `BlobStore`; `dmarcreports`, `tlsreports`: `ReportData`; `trace`: `Trace`).
"""

from __future__ import annotations

from typing import Protocol

from mailwright.store.api import BlobStore, FanOut, ReportData, Trace


class DeliveryStore(FanOut, BlobStore, Trace, ReportData, Protocol):
    """Local delivery's store: the fan-out unit of work and its batched reads, message content,
    the message trace, and received DMARC and TLS-RPT reports kept."""


class ReportSending(ReportData, BlobStore, Protocol):
    """The daily DMARC aggregate reports (`dmarcreports.send_reports`): the rows read and
    forgotten, each report staged for the outbound queue."""
