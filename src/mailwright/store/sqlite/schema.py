"""Versioned schema for the embedded store; each migration runs in one transaction."""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: the initial schema
    """
    CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE domains(name TEXT PRIMARY KEY, created REAL NOT NULL);
    CREATE TABLE accounts(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        address TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        quota_bytes INTEGER NOT NULL DEFAULT 0,
        pop3_keep INTEGER NOT NULL DEFAULT 0,
        disabled INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL,
        used_bytes INTEGER NOT NULL DEFAULT 0,
        used_messages INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE aliases(source TEXT PRIMARY KEY, targets TEXT NOT NULL);
    CREATE TABLE mailboxes(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        uidnext INTEGER NOT NULL DEFAULT 1,
        highestmodseq INTEGER NOT NULL DEFAULT 1,
        special_use TEXT,
        retention_days INTEGER NOT NULL DEFAULT 0,
        UNIQUE(account_id, name)
    );
    CREATE TABLE subscriptions(
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        PRIMARY KEY(account_id, name)
    ) WITHOUT ROWID;
    CREATE TABLE blobs(
        id TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        refs INTEGER NOT NULL,
        meta BLOB NOT NULL,
        created REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE messages(
        mailbox_id INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        modseq INTEGER NOT NULL,
        flags TEXT NOT NULL DEFAULT '',
        internaldate REAL NOT NULL,
        size INTEGER NOT NULL,
        blob_id TEXT NOT NULL,
        PRIMARY KEY(mailbox_id, uid)
    ) WITHOUT ROWID;
    CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
    CREATE INDEX messages_blob ON messages(blob_id);
    CREATE TABLE expunged(
        mailbox_id INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        modseq INTEGER NOT NULL,
        PRIMARY KEY(mailbox_id, uid)
    ) WITHOUT ROWID;
    CREATE TABLE maildrop_locks(
        account_id INTEGER PRIMARY KEY,
        owner TEXT NOT NULL,
        expires REAL NOT NULL
    );
    CREATE TABLE queue(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        blob_id TEXT NOT NULL,
        sender TEXT NOT NULL,
        domain TEXT NOT NULL,
        recipients TEXT NOT NULL,
        created REAL NOT NULL,
        next_attempt REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        ret TEXT,
        envid TEXT,
        lease_owner TEXT,
        lease_until REAL,
        warned INTEGER NOT NULL DEFAULT 0,
        extra TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX queue_due ON queue(next_attempt);
    """,
    # one queue id per message, the one the SMTP reply and the Received header show; entries
    # from before it keep their number as their id
    """
    ALTER TABLE queue ADD COLUMN queue_id TEXT NOT NULL DEFAULT '';
    UPDATE queue SET queue_id = CAST(id AS TEXT);
    CREATE INDEX queue_by_queue_id ON queue(queue_id);
    """,
    # IMAP \Recent (RFC 3501 2.3.2): messages from this UID on are recent to the next session
    """
    ALTER TABLE mailboxes ADD COLUMN first_recent_uid INTEGER NOT NULL DEFAULT 1;
    """,
    # spam filter: classifier token counts per scope (0 = server-wide, else an account id),
    # message totals, the per-message training ledger, sender reputation, trainer positions
    """
    CREATE TABLE spam_tokens(
        scope INTEGER NOT NULL,
        token INTEGER NOT NULL,
        ham INTEGER NOT NULL DEFAULT 0,
        spam INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY(scope, token)
    ) WITHOUT ROWID;
    CREATE TABLE spam_totals(
        scope INTEGER PRIMARY KEY,
        ham INTEGER NOT NULL DEFAULT 0,
        spam INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE spam_trained(
        account_id INTEGER NOT NULL,
        blob_id TEXT NOT NULL,
        label TEXT NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY(account_id, blob_id)
    ) WITHOUT ROWID;
    CREATE TABLE spam_senders(
        account_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        ham INTEGER NOT NULL DEFAULT 0,
        spam INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY(account_id, kind, name)
    ) WITHOUT ROWID;
    CREATE TABLE spam_positions(
        mailbox_id INTEGER PRIMARY KEY,
        modseq INTEGER NOT NULL
    );
    """,
    # DMARC aggregate reports (RFC 7489 7.2): what our MX evaluated, what others reported
    """
    CREATE TABLE dmarc_results (
        day INTEGER NOT NULL,
        header_from TEXT NOT NULL,
        source_ip TEXT NOT NULL,
        disposition TEXT NOT NULL,
        dkim_aligned TEXT NOT NULL,
        spf_aligned TEXT NOT NULL,
        envelope_from TEXT NOT NULL,
        dkim TEXT NOT NULL,
        spf TEXT NOT NULL,
        policy TEXT NOT NULL,
        count INTEGER NOT NULL,
        policy_domain TEXT NOT NULL,
        PRIMARY KEY (header_from, day, source_ip, disposition, dkim_aligned, spf_aligned,
                     envelope_from, dkim, spf)
    );
    CREATE TABLE dmarc_reports (
        id INTEGER PRIMARY KEY,
        org_name TEXT NOT NULL,
        report_id TEXT NOT NULL,
        domain TEXT NOT NULL,
        begin_ts INTEGER NOT NULL,
        end_ts INTEGER NOT NULL,
        email TEXT NOT NULL,
        messages INTEGER NOT NULL,
        passed INTEGER NOT NULL,
        records TEXT NOT NULL,
        received REAL NOT NULL,
        UNIQUE (org_name, report_id)
    );
    """,
    # Sieve scripts (RFC 5804 storage) and what vacation/duplicate remember (RFC 5230, 7352)
    """
    CREATE TABLE sieve_scripts(
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        content TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 0,
        updated REAL NOT NULL,
        PRIMARY KEY(account_id, name)
    );
    CREATE TABLE sieve_memory(
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        expires REAL NOT NULL,
        PRIMARY KEY(account_id, key)
    );
    """,
    # send-as grants (submission From:/Sender: policy)
    """
    CREATE TABLE send_as(
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        address TEXT NOT NULL,
        PRIMARY KEY(account_id, address)
    ) WITHOUT ROWID;
    """,
    # TLS reporting (RFC 8460): our outbound TLS results per day, and reports sent to us
    """
    CREATE TABLE tls_results(
        day TEXT NOT NULL,
        policy_domain TEXT NOT NULL,
        policy_type TEXT NOT NULL,
        policy_string TEXT NOT NULL,
        result_type TEXT NOT NULL,
        mx_host TEXT NOT NULL,
        receiving_ip TEXT NOT NULL,
        count INTEGER NOT NULL,
        info TEXT NOT NULL DEFAULT '',
        PRIMARY KEY(day, policy_domain, policy_type, policy_string, result_type, mx_host,
                    receiving_ip)
    );
    CREATE TABLE tls_reports(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        received REAL NOT NULL,
        organization TEXT NOT NULL,
        report_id TEXT NOT NULL,
        start_time TEXT NOT NULL,
        end_time TEXT NOT NULL,
        policy_domains TEXT NOT NULL,
        successes INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        report_json TEXT NOT NULL,
        UNIQUE(organization, report_id)
    );
    """,
    # RFC 8514 SAVEDATE: when each message was saved into its mailbox (set by the trigger on
    # every insert: append, delivery, copy, move; NULL for messages saved before this column)
    """
    ALTER TABLE messages ADD COLUMN savedate REAL;
    CREATE TRIGGER messages_savedate AFTER INSERT ON messages FOR EACH ROW
    WHEN NEW.savedate IS NULL
    BEGIN
        UPDATE messages SET savedate = (julianday('now') - 2440587.5) * 86400.0
        WHERE mailbox_id = NEW.mailbox_id AND uid = NEW.uid;
    END;
    """,
    # IMAP METADATA (RFC 5464): mailbox annotations (deleted with their mailbox, renamed with
    # it since they follow its id) and per-account server annotations
    """
    CREATE TABLE mailbox_metadata(
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        entry TEXT NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY(mailbox_id, entry)
    ) WITHOUT ROWID;
    CREATE TABLE server_metadata(
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        entry TEXT NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY(account_id, entry)
    ) WITHOUT ROWID;
    """,
    # RFC 9208 QUOTA=RES-MESSAGE: a limit on the number of messages (0 = none)
    """
    ALTER TABLE accounts ADD COLUMN quota_messages INTEGER NOT NULL DEFAULT 0;
    """,
    # spam filter: envelope state every process of the server shares (Unix times): greylisting
    # triplets by a hash of (client network, sender, recipient), and recipients counted per
    # rate-limit key in ten-minute slots
    """
    CREATE TABLE spam_greylist(
        key TEXT PRIMARY KEY,
        first REAL NOT NULL,
        passed_until REAL NOT NULL DEFAULT 0
    );
    CREATE TABLE spam_rates(
        key TEXT NOT NULL,
        slot INTEGER NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY(key, slot)
    );
    """,
    # the web interface: sessions (by the cookie's SHA-256), account settings, app passwords
    """
    CREATE TABLE web_sessions(
        id TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        csrf TEXT NOT NULL,
        stage TEXT NOT NULL,
        created REAL NOT NULL,
        expires REAL NOT NULL
    );
    CREATE INDEX web_sessions_account ON web_sessions(account_id);
    CREATE TABLE account_settings(
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY(account_id, key)
    );
    CREATE TABLE app_passwords(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        label TEXT NOT NULL,
        digest TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE INDEX app_passwords_account ON app_passwords(account_id, digest);
    """,
    # IMAP URLAUTH (RFC 4467 3): one mailbox access key per account and mailbox
    """
    CREATE TABLE urlauth_keys(
        mailbox_id INTEGER PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        key BLOB NOT NULL
    );
    CREATE INDEX urlauth_keys_account ON urlauth_keys(account_id);
    """,
    # RFC 4314 ACLs: who else may do what in a mailbox (the owner's rights are implicit);
    # an identifier is an address, a group (alias) address, "anyone" or "authenticated", with
    # a leading "-" for negative rights. Deleted with the mailbox, renamed with it (by id).
    """
    CREATE TABLE mailbox_acl(
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        identifier TEXT NOT NULL,
        rights TEXT NOT NULL,
        PRIMARY KEY(mailbox_id, identifier)
    ) WITHOUT ROWID;
    CREATE INDEX mailbox_acl_identifier ON mailbox_acl(identifier);
    """,
    # message trace (each decision about a message, kept [retention] trace days) and the
    # administrator's spam settings over the configuration's [spam]
    """
    CREATE TABLE trace_events(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        queue_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        stage TEXT NOT NULL,
        recipient TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX trace_events_queue ON trace_events(queue_id);
    CREATE INDEX trace_events_message ON trace_events(message_id);
    CREATE INDEX trace_events_at ON trace_events(at);
    CREATE TABLE spam_overrides(
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY(scope, key)
    );
    """,
    # the expunge records are read by MODSEQ (IMAP sync, the listing's refresh), as on
    # PostgreSQL: without this index each read went through every expunged UID of the mailbox
    """
    CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    """The statements of a migration; a trigger body's ";" does not end its CREATE TRIGGER."""
    out: list[str] = []
    buf = ""
    for part in script.split(";"):
        buf += part + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \t\r\n;"):
                out.append(buf)
            buf = ""
    return out


def current_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the number of migrations applied."""
    version = current_version(conn)
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"store schema version {version} is newer than this Mailwright ({SCHEMA_VERSION})"
        )
    applied = 0
    for i in range(version, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in _statements(MIGRATIONS[i]):
                conn.execute(stmt)
            conn.execute(f"PRAGMA user_version={i + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied += 1
    return applied
