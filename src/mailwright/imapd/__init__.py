"""IMAP4rev2/IMAP4rev1 session logic over the Store interface (RFC 9051, RFC 3501).

Layout (one module per command group, as in ``proto/imap`` for the grammar):

* ``session``      the I/O loop of one connection, the dispatch table (``HANDLERS``), sync
                   points and unsolicited responses; the ``Transport`` it runs on.
* ``view``         the selected mailbox as this session numbers it (sequence numbers, known
                   flags, held-back expunges).
* ``cmd_auth``     any-state and not-authenticated commands, ENABLE, IDLE.
* ``cmd_mailbox``  CREATE/DELETE/RENAME/(UN)SUBSCRIBE/LIST/LSUB/NAMESPACE/STATUS/APPEND/QUOTA.
* ``cmd_selected`` SELECT/EXAMINE (CONDSTORE, QRESYNC), CLOSE, UNSELECT, EXPUNGE, STORE,
                   COPY, MOVE.
* ``dispatch``     FETCH/SEARCH/SORT/THREAD: the session side (sets, \\Seen, CHANGEDSINCE,
                   ESEARCH, streaming) around the pure functions of ``fetch``, ``search`` and
                   ``sortthread``, reached through ``content``.
* ``blobcache``    the process-wide content-addressed cache of blobs and meta.
* ``names``        mailbox name rules, modified UTF-7, LIST patterns.
* ``listener``     ``create(ctx, listener)``: the asyncio adapter registered for imap/imaps.
"""
