"""Storage: the `Store` interface (api), and the backends that implement it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailwright.config import Config
    from mailwright.store.api import Store


log = logging.getLogger("mailwright.store")


def meta_parser() -> Callable[[bytes], bytes]:
    """The parse-once function stored with every blob (mailwright.mime).

    Imported unconditionally: a store that kept messages without their parse would serve
    them without structure, so a broken MIME package stops the server at start instead.
    """
    from mailwright.mime import parse_message
    from mailwright.mime.searchfields import search_fields

    def parse(raw: bytes) -> bytes:
        info = parse_message(raw)
        problems = getattr(info, "problems", ())
        if problems:
            # Malformed mail is kept as it is (best structure available), and said so once.
            log.warning("message parsed with problems: %s", "; ".join(map(str, problems[:5])))
        # the fields SEARCH compares, decoded once here rather than at every SEARCH
        data: bytes = info.to_meta(search_fields(raw, info.header_end))
        return data

    return parse


def open_store(config: Config) -> Store:
    """Build (not yet open) the configured backend."""
    parser = meta_parser()
    if config.storage.backend == "postgres":
        from mailwright.store.postgres import PostgresStore  # type: ignore[attr-defined]

        store: Store = PostgresStore(
            config.storage.dsn, config.server.data_dir, meta_parser=parser,
            blobs=config.storage.blobs, fsync=config.storage.fsync,
        )
        return store
    from mailwright.store.sqlite import SQLiteStore

    return SQLiteStore(
        config.server.data_dir,
        fsync=config.storage.fsync,
        meta_parser=parser,
        max_message_size=config.limits.max_message_size,
        min_free=config.storage.min_free,
    )
