"""Versioned schema of the PostgreSQL backend.

Migrations are ordered; each runs in its own transaction (PostgreSQL DDL is transactional),
under an advisory lock so that several nodes starting at once apply each migration exactly once.
The applied versions are rows of `mailwright_schema`. Text columns that are sorted or compared
byte-wise use the "C" collation so that order and equality match the embedded store whatever
the database's locale is.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

# The advisory lock key that serialises migrations (any constant works; it names this purpose).
MIGRATION_LOCK = 0x6D61696C77726967  # "mailwrig"

MIGRATIONS: list[tuple[str, str]] = [
    (
        "initial schema",
        """
        CREATE TABLE counters(
            name text COLLATE "C" PRIMARY KEY,
            value bigint NOT NULL
        );
        CREATE TABLE domains(
            name text COLLATE "C" PRIMARY KEY,
            created timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE accounts(
            id bigserial PRIMARY KEY,
            address text COLLATE "C" NOT NULL UNIQUE,
            password_hash text NOT NULL,
            quota_bytes bigint NOT NULL DEFAULT 0,
            pop3_keep boolean NOT NULL DEFAULT false,
            disabled boolean NOT NULL DEFAULT false,
            created timestamptz NOT NULL DEFAULT now(),
            used_bytes bigint NOT NULL DEFAULT 0,
            used_messages bigint NOT NULL DEFAULT 0
        );
        CREATE TABLE aliases(
            source text COLLATE "C" PRIMARY KEY,
            targets text[] NOT NULL
        );
        CREATE TABLE mailboxes(
            id bigserial PRIMARY KEY,
            account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            name text COLLATE "C" NOT NULL,
            uidvalidity bigint NOT NULL,
            uidnext bigint NOT NULL DEFAULT 1,
            highestmodseq bigint NOT NULL DEFAULT 1,
            special_use text,
            retention_days integer NOT NULL DEFAULT 0,
            UNIQUE(account_id, name)
        );
        CREATE TABLE subscriptions(
            account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            name text COLLATE "C" NOT NULL,
            PRIMARY KEY(account_id, name)
        );
        CREATE TABLE blobs(
            id text COLLATE "C" PRIMARY KEY,
            size bigint NOT NULL,
            refs integer NOT NULL,
            meta bytea NOT NULL,
            data bytea NOT NULL,
            created timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX blobs_unreferenced ON blobs(created) WHERE refs <= 0;
        CREATE TABLE messages(
            mailbox_id bigint NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
            uid bigint NOT NULL,
            modseq bigint NOT NULL,
            flags text[] NOT NULL DEFAULT '{}',
            internaldate timestamptz NOT NULL,
            size bigint NOT NULL,
            blob_id text COLLATE "C" NOT NULL,
            PRIMARY KEY(mailbox_id, uid)
        );
        CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
        CREATE INDEX messages_blob ON messages(blob_id);
        CREATE TABLE expunged(
            mailbox_id bigint NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
            uid bigint NOT NULL,
            modseq bigint NOT NULL,
            PRIMARY KEY(mailbox_id, uid)
        );
        CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);
        CREATE TABLE maildrop_locks(
            account_id bigint PRIMARY KEY,
            owner text NOT NULL,
            expires timestamptz NOT NULL
        );
        CREATE TABLE queue(
            id bigserial PRIMARY KEY,
            blob_id text COLLATE "C" NOT NULL,
            sender text NOT NULL,
            domain text NOT NULL,
            recipients jsonb NOT NULL,
            created timestamptz NOT NULL DEFAULT now(),
            next_attempt timestamptz NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            last_error text NOT NULL DEFAULT '',
            ret text,
            envid text,
            lease_owner text,
            lease_until timestamptz,
            warned boolean NOT NULL DEFAULT false,
            extra jsonb NOT NULL DEFAULT '{}'
        );
        CREATE INDEX queue_due ON queue(next_attempt);
        CREATE INDEX queue_blob ON queue(blob_id);
        """,
    ),
    (
        "one queue id per message",
        """
        ALTER TABLE queue ADD COLUMN queue_id text COLLATE "C" NOT NULL DEFAULT '';
        UPDATE queue SET queue_id = id::text;
        CREATE INDEX queue_by_queue_id ON queue(queue_id);
        """,
    ),
    (
        "IMAP \\Recent: first recent UID per mailbox (RFC 3501 2.3.2)",
        """
        ALTER TABLE mailboxes ADD COLUMN first_recent_uid bigint NOT NULL DEFAULT 1;
        """,
    ),
    (
        "spam filter: token counts, totals, training ledger, sender reputation, positions",
        """
        CREATE TABLE spam_tokens(
            scope bigint NOT NULL,
            token bigint NOT NULL,
            ham integer NOT NULL DEFAULT 0,
            spam integer NOT NULL DEFAULT 0,
            PRIMARY KEY(scope, token)
        );
        CREATE TABLE spam_totals(
            scope bigint PRIMARY KEY,
            ham integer NOT NULL DEFAULT 0,
            spam integer NOT NULL DEFAULT 0
        );
        CREATE TABLE spam_trained(
            account_id bigint NOT NULL,
            blob_id text COLLATE "C" NOT NULL,
            label text NOT NULL,
            updated timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY(account_id, blob_id)
        );
        CREATE TABLE spam_senders(
            account_id bigint NOT NULL,
            kind text NOT NULL,
            name text NOT NULL,
            ham integer NOT NULL DEFAULT 0,
            spam integer NOT NULL DEFAULT 0,
            PRIMARY KEY(account_id, kind, name)
        );
        CREATE TABLE spam_positions(
            mailbox_id bigint PRIMARY KEY,
            modseq bigint NOT NULL
        );
        """,
    ),
    (
        "DMARC aggregate reports",
        """
        CREATE TABLE dmarc_results (
            day integer NOT NULL,
            header_from text COLLATE "C" NOT NULL,
            source_ip text COLLATE "C" NOT NULL,
            disposition text NOT NULL,
            dkim_aligned text NOT NULL,
            spf_aligned text NOT NULL,
            envelope_from text COLLATE "C" NOT NULL,
            dkim text COLLATE "C" NOT NULL,
            spf text COLLATE "C" NOT NULL,
            policy text NOT NULL,
            count bigint NOT NULL,
            policy_domain text COLLATE "C" NOT NULL,
            PRIMARY KEY (header_from, day, source_ip, disposition, dkim_aligned, spf_aligned,
                         envelope_from, dkim, spf)
        );
        CREATE TABLE dmarc_reports (
            id bigserial PRIMARY KEY,
            org_name text COLLATE "C" NOT NULL,
            report_id text COLLATE "C" NOT NULL,
            domain text COLLATE "C" NOT NULL,
            begin_ts bigint NOT NULL,
            end_ts bigint NOT NULL,
            email text NOT NULL,
            messages bigint NOT NULL,
            passed bigint NOT NULL,
            records text NOT NULL,
            received timestamptz NOT NULL DEFAULT now(),
            UNIQUE (org_name, report_id)
        );
        """,
    ),
    (
        "sieve scripts and sieve memory",
        """
        CREATE TABLE sieve_scripts(
            account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            name text COLLATE "C" NOT NULL,
            content text NOT NULL,
            active boolean NOT NULL DEFAULT false,
            updated timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY(account_id, name)
        );
        CREATE TABLE sieve_memory(
            account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            key text COLLATE "C" NOT NULL,
            expires timestamptz NOT NULL,
            PRIMARY KEY(account_id, key)
        );
        """,
    ),
    (
        "send-as grants",
        """
        CREATE TABLE send_as(
            account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            address text COLLATE "C" NOT NULL,
            PRIMARY KEY(account_id, address)
        );
        """,
    ),
    (
        "TLS reporting (RFC 8460): outbound TLS results per day, reports sent to us",
        """
        CREATE TABLE tls_results(
            day text COLLATE "C" NOT NULL,
            policy_domain text COLLATE "C" NOT NULL,
            policy_type text NOT NULL,
            policy_string text COLLATE "C" NOT NULL,
            result_type text NOT NULL,
            mx_host text COLLATE "C" NOT NULL,
            receiving_ip text NOT NULL,
            count bigint NOT NULL,
            info text NOT NULL DEFAULT '',
            PRIMARY KEY(day, policy_domain, policy_type, policy_string, result_type, mx_host,
                        receiving_ip)
        );
        CREATE TABLE tls_reports(
            id bigserial PRIMARY KEY,
            received timestamptz NOT NULL DEFAULT now(),
            organization text NOT NULL,
            report_id text NOT NULL,
            start_time text NOT NULL,
            end_time text NOT NULL,
            policy_domains text NOT NULL,
            successes bigint NOT NULL,
            failures bigint NOT NULL,
            report_json text NOT NULL,
            UNIQUE(organization, report_id)
        );
        """,
    ),
    (
        "RFC 8514 SAVEDATE: when each message was saved into its mailbox",
        """
        ALTER TABLE messages ADD COLUMN savedate double precision;
        ALTER TABLE messages ALTER COLUMN savedate
            SET DEFAULT extract(epoch FROM clock_timestamp())
        """,
    ),
    (
        "IMAP METADATA (RFC 5464): mailbox and per-account server annotations",
        """
        CREATE TABLE mailbox_metadata(
            mailbox_id bigint NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
            entry text COLLATE "C" NOT NULL,
            value bytea NOT NULL,
            PRIMARY KEY(mailbox_id, entry)
        );
        CREATE TABLE server_metadata(
            account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            entry text COLLATE "C" NOT NULL,
            value bytea NOT NULL,
            PRIMARY KEY(account_id, entry)
        )
        """,
    ),
    (
        "RFC 9208 QUOTA=RES-MESSAGE: a limit on the number of messages",
        """
        ALTER TABLE accounts ADD COLUMN quota_messages bigint NOT NULL DEFAULT 0
        """,
    ),
    (
        "spam filter: greylisting triplets and rate-limit counts shared by every process",
        """
        CREATE TABLE spam_greylist(
            key text COLLATE "C" PRIMARY KEY,
            first double precision NOT NULL,
            passed_until double precision NOT NULL DEFAULT 0
        );
        CREATE TABLE spam_rates(
            key text COLLATE "C" NOT NULL,
            slot bigint NOT NULL,
            count bigint NOT NULL,
            PRIMARY KEY(key, slot)
        );
        """,
    ),
    (
        "the web interface: sessions, account settings, app passwords",
        """
        CREATE TABLE web_sessions(
            id text COLLATE "C" PRIMARY KEY,
            account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            csrf text NOT NULL,
            stage text NOT NULL,
            created double precision NOT NULL,
            expires double precision NOT NULL
        );
        CREATE INDEX web_sessions_account ON web_sessions(account_id);
        CREATE TABLE account_settings(
            account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            key text COLLATE "C" NOT NULL,
            value text NOT NULL,
            PRIMARY KEY(account_id, key)
        );
        CREATE TABLE app_passwords(
            id bigserial PRIMARY KEY,
            account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            label text NOT NULL,
            digest text COLLATE "C" NOT NULL,
            created double precision NOT NULL
        );
        CREATE INDEX app_passwords_account ON app_passwords(account_id, digest);
        """,
    ),
    (
        "IMAP URLAUTH mailbox access keys",
        """
        CREATE TABLE urlauth_keys(
            mailbox_id bigint PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
            account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            key bytea NOT NULL
        );
        CREATE INDEX urlauth_keys_account ON urlauth_keys(account_id);
        """,
    ),
    (
        "RFC 4314 ACLs: rights of other identifiers on a mailbox",
        """
        CREATE TABLE mailbox_acl(
            mailbox_id bigint NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
            identifier text COLLATE "C" NOT NULL,
            rights text NOT NULL,
            PRIMARY KEY(mailbox_id, identifier)
        );
        CREATE INDEX mailbox_acl_identifier ON mailbox_acl(identifier);
        """,
    ),
    (
        "message trace and the administrator's spam settings",
        """
        CREATE TABLE trace_events(
            id bigserial PRIMARY KEY,
            at timestamptz NOT NULL,
            queue_id text NOT NULL,
            message_id text NOT NULL,
            stage text NOT NULL,
            recipient text NOT NULL,
            detail text NOT NULL
        );
        CREATE INDEX trace_events_queue ON trace_events(queue_id);
        CREATE INDEX trace_events_message ON trace_events(message_id);
        CREATE INDEX trace_events_at ON trace_events(at);
        CREATE TABLE spam_overrides(
            scope text NOT NULL,
            key text NOT NULL,
            value text NOT NULL,
            PRIMARY KEY(scope, key)
        );
        """,
    ),
    (
        "message content in files ([storage] blobs = files): a blob row without its bytes",
        """
        ALTER TABLE blobs ALTER COLUMN data DROP NOT NULL;
        """,
    ),
]

SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer Mailwright; this one must not touch it."""


async def current_version(conn: AsyncConnection[Any]) -> int:
    cur = await conn.execute("SELECT to_regclass('mailwright_schema') IS NOT NULL")
    row = await cur.fetchone()
    if row is None or not row[0]:
        return 0
    cur = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM mailwright_schema")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def migrate(conn: AsyncConnection[Any]) -> int:
    """Bring the schema up to date on an autocommit connection; returns migrations applied."""
    applied = 0
    for target in range(1, SCHEMA_VERSION + 1):
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS mailwright_schema("
                " version integer PRIMARY KEY,"
                " description text NOT NULL,"
                " applied timestamptz NOT NULL DEFAULT now())"
            )
            version = await current_version(conn)
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"database schema version {version} is newer than this Mailwright"
                    f" ({SCHEMA_VERSION})"
                )
            if version >= target:
                continue
            description, sql = MIGRATIONS[target - 1]
            for stmt in sql.split(";"):
                if stmt.strip():
                    await conn.execute(stmt.encode())
            await conn.execute(
                "INSERT INTO mailwright_schema(version, description) VALUES (%s, %s)",
                (target, description),
            )
            applied += 1
    if not applied:
        version = await current_version(conn)
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"database schema version {version} is newer than this Mailwright"
                f" ({SCHEMA_VERSION})"
            )
    return applied
