"""What every family of rules needs from the backend it runs on (see `tx.Backend`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from mailwright.store.api import StagedBlob
from mailwright.store.blobstore import BlobStorage
from mailwright.store.core.tx import Tx

T = TypeVar("T")


class CoreBase:
    """The hooks a backend class implements; the rule families inherit from this."""

    async def _unit(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        raise NotImplementedError

    async def _single(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        """A unit of one statement: a backend may run it without an explicit transaction
        (a statement is atomic), saving the round trips of BEGIN and COMMIT. `fn` must issue
        exactly one statement and use neither `Tx.changed` nor blob references."""
        return await self._unit(fn)

    async def _view(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        raise NotImplementedError

    async def _consistent_view(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        """Reads that must agree with each other: one snapshot."""
        return await self._view(fn)

    async def _stage(self, blob: StagedBlob) -> None:
        raise NotImplementedError

    def _blob_storage(self) -> BlobStorage:
        """Where the backend keeps message content (files, or a remote behind a cache)."""
        raise NotImplementedError
