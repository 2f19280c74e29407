"""The composition root: builds the services from the config and runs the listeners.

This is the only module that knows every layer; everything else receives what it needs through
`AppContext`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import logging
import os
import signal
import socket
import ssl
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mailwright.accounts.authenticator import Authenticator
from mailwright.accounts.directory import Directory
from mailwright.accounts.passwords import dummy_hash
from mailwright.config import Config, ConfigError, ListenerConfig
from mailwright.delivery.local import LocalDelivery
from mailwright.delivery.trace import settle as settle_trace
from mailwright.log import event
from mailwright.net.limits import CommandRateLimiter
from mailwright.net.registry import FACTORIES
from mailwright.net.server import BindError, Handler, ListenerSet
from mailwright.store.api import Store

if TYPE_CHECKING:
    from mailwright.metrics import SharedMetrics
    from mailwright.workers.role import WorkerRole

log = logging.getLogger("mailwright.app")


@dataclass
class AppContext:
    config: Config
    store: Store
    directory: Directory
    authenticator: Authenticator
    delivery: LocalDelivery
    ssl_context: ssl.SSLContext | None
    # Always set by build_context (a server never runs without them); test harnesses that drive
    # one protocol alone may leave them None.
    outbound: Any = None  # mailwright.queue.service.OutboundService
    resolver: Any = None  # mailwright.dns resolver, shared by outbound and mail authentication
    listeners: Any = None  # the running ListenerSet (metrics)
    spam: Any = None  # mailwright.spam.service.SpamFilter: MX screening, scoring, learning
    limiter: CommandRateLimiter = field(default_factory=lambda: CommandRateLimiter(0))
    node_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    background: list[asyncio.Task[Any]] = field(default_factory=list)
    server_tls: Any = None  # mailwright.tls.ServerTLS owning ssl_context (reloadable)
    acme: Any = None  # mailwright.acme.manager.CertificateManager with [tls] acme = true
    worker_metrics: Any = None  # mailwright.metrics.SharedMetrics with several workers

    @property
    def hostname(self) -> str:
        return self.config.server.hostname


class StartupError(Exception):
    """A configured listener or feature cannot start; `str()` names it (exit status 1)."""


def load_ssl(config: Config) -> ssl.SSLContext | None:
    """The server's TLS context from `[tls] cert` and `key`.

    A file that is missing or unreadable, or a certificate and key that do not load, is a
    configuration error naming the file (`serve` exits 2 before opening anything else).
    """
    if config.tls.cert is None or config.tls.key is None:
        return None
    from mailwright.tls import server_context

    for key, path in (("tls.cert", config.tls.cert), ("tls.key", config.tls.key)):
        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            reason = (e.strerror or str(e)).lower()
            raise ConfigError(str(config.source), key, f"cannot read {path}: {reason}") from None
    try:
        return server_context(config.tls.cert, config.tls.key)
    except (ssl.SSLError, ValueError, OSError) as e:
        raise ConfigError(
            str(config.source), "tls",
            f"cannot load the certificate {config.tls.cert} with the key {config.tls.key}: {e}",
        ) from None


def _component(what: str, path: str, *args: Any) -> Any:
    """Build a component every server has (`module:factory`); failing to is a StartupError
    naming it, never a server that quietly runs without it."""
    mod_name, _, attr = path.partition(":")
    try:
        factory = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as e:
        raise StartupError(f"cannot start the {what} ({mod_name}): {e}") from e
    return factory(*args)


def load_server_tls(config: Config, context: ssl.SSLContext | None) -> Any:
    """The shared, reloadable owner (`tls.ServerTLS`) of `load_ssl`'s context, or None."""
    if context is None or config.tls.cert is None or config.tls.key is None:
        return None
    from mailwright.tls import ServerTLS

    return ServerTLS(config.tls.cert, config.tls.key, context)


def setup_acme(ctx: AppContext) -> None:
    """[tls] acme = true: a certificate manager; an earlier run's certificate served at once."""
    if not ctx.config.tls.acme or ctx.server_tls is None:
        return
    from mailwright.acme.manager import CertificateManager

    protocols = {lc.protocol for lc in ctx.config.listeners}
    ctx.acme = CertificateManager(ctx.config, ctx.server_tls, https="https" in protocols,
                                  http="http" in protocols)  # fmt: skip
    if ctx.acme.load_existing():
        event(log, "acme certificate loaded", path=str(ctx.acme.cert_path))


async def build_context(config: Config, worker: WorkerRole | None = None) -> AppContext:
    # a worker uses the context its supervisor loaded before dropping privileges
    ssl_context = worker.ssl_context if worker is not None else load_ssl(config)
    store = _component("message store", "mailwright.store:open_store", config)
    if worker is not None and config.storage.backend == "sqlite":
        # Another worker's commit must wake this worker's IDLE sessions (workers.channel);
        # PostgreSQL's LISTEN/NOTIFY reaches every worker's store by itself.
        store.changes = worker.channel.make_hub()
    await store.open()
    directory = Directory(store)
    auth = Authenticator(
        store,
        failures_before_ban=config.limits.auth_failures_before_ban,
        address_failures_before_ban=config.limits.auth_address_failures_before_ban,
        ban_time=config.limits.auth_ban_time,
        base_delay=config.limits.auth_failure_delay,
        max_delay=config.limits.auth_max_failure_delay,
        dummy_hash=dummy_hash(config.passwords),
    )
    if worker is not None:
        auth.relay = worker.channel.send_failure
        worker.channel.on_failure = auth.record_remote_failure
    ctx = AppContext(
        config=config,
        store=store,
        directory=directory,
        authenticator=auth,
        delivery=LocalDelivery(store, directory),
        ssl_context=ssl_context,
    )
    ctx.server_tls = load_server_tls(config, ssl_context)
    setup_acme(ctx)
    ctx.limiter = CommandRateLimiter(
        config.limits.commands_per_second, exempt=config.limits.rate_limit_exempt,
        table=worker.rates if worker is not None else None,
    )
    try:
        ctx.resolver = _component("DNS resolver", "mailwright.dns.resolver:from_config", config)
        ctx.outbound = _component(
            "outbound queue", "mailwright.queue.service:create_outbound", ctx
        )
        ctx.spam = _component("spam filter", "mailwright.spam.service:create_filter", ctx)
        if worker is not None and ctx.spam is not None:
            # settings saved on /admin/spam in one worker: the others read them at once
            ctx.spam.announce = worker.channel.send_spam_settings
            worker.channel.on_spam_settings = ctx.spam.expire
        ctx.delivery.filter = _component(
            "Sieve filter", "mailwright.sieve.delivery:create_filter", ctx
        )
    except BaseException:
        await store.close()
        raise
    return ctx


def handler_for(ctx: AppContext, lc: ListenerConfig) -> Handler:
    """The connection handler of one configured listener; a StartupError naming the listener
    when its protocol cannot be loaded."""
    try:
        handler: Handler = _component(f"{lc.protocol} protocol", FACTORIES[lc.protocol], ctx, lc)
    except StartupError as e:
        raise StartupError(f"listener {lc.name}: {e}") from e
    return handler


async def retention_loop(ctx: AppContext) -> None:
    """Expunge old messages per the retention rules (default Trash and Junk after 30 days) and
    forget message trace events after `[retention] trace` days."""
    rules = dict(ctx.config.retention.rules)
    while True:
        try:
            for acc in await ctx.store.list_accounts():
                for mb in await ctx.store.list_mailboxes(acc.id):
                    days = mb.retention_days or rules.get(mb.name, 0)
                    if days:
                        cutoff = datetime.now(UTC) - timedelta(days=days)
                        gone = await ctx.store.expunge_older_than(mb.id, cutoff)
                        if gone:
                            event(log, "retention", account=acc.address, mailbox=mb.name, expunged=len(gone))
            if ctx.config.retention.trace_days:
                pruned = await ctx.store.trace_purge(ctx.config.retention.trace_days * 86400.0)
                if pruned:
                    event(log, "retention", trace_events=pruned)
        except Exception:  # noqa: BLE001 - retry next round
            log.exception("retention pass failed")
        await asyncio.sleep(ctx.config.retention.interval)


async def send_dmarc_reports(ctx: AppContext, *, now: float | None = None) -> list[Any]:
    """Queue the DMARC aggregate reports of the finished days (RFC 7489 7.2)."""
    from mailwright.delivery.dmarcreports import send_reports
    from mailwright.mailauth import KeyStore
    from mailwright.mailauth.dnsquery import as_auth_dns

    if ctx.outbound is None or ctx.resolver is None:
        return []
    cfg = ctx.config.dmarc
    from_address = cfg.report_address
    if not from_address:
        domains = [d.name for d in await ctx.store.list_domains()]
        host = ctx.hostname.lower()
        mine = [d for d in domains if host == d or host.endswith("." + d)] or domains or [host]
        from_address = f"postmaster@{mine[0]}"
    sent: list[Any] = await send_reports(
        ctx.store, ctx.outbound, as_auth_dns(ctx.resolver),
        receiver=ctx.hostname, org_name=cfg.org_name or ctx.hostname,
        from_address=from_address, keys=KeyStore(ctx.config.server.data_dir), now=now,
    )  # fmt: skip
    return sent


async def dmarc_report_loop(ctx: AppContext) -> None:
    """Look for finished days every `[dmarc] interval`; each day's rows go out once."""
    while True:
        try:
            await send_dmarc_reports(ctx)
        except Exception:
            log.exception("dmarc report pass failed")
        await asyncio.sleep(ctx.config.dmarc.interval)


def drop_privileges(config: Config) -> str | None:
    """Started as root with `[server] user`: give the data to that user, then become it.

    Called once every port is bound, so privileged ports (25, 110, 143, 465, 587, 993, 995)
    work without keeping root; the TLS key and the store are already open. Returns a message
    for the log, or None when nothing was to be done.
    """
    user = config.server.user
    if not user:
        return None
    import grp
    import pwd

    pw = pwd.getpwnam(user)
    gid = grp.getgrnam(config.server.group).gr_gid if config.server.group else pw.pw_gid
    if os.geteuid() != 0:
        if os.geteuid() == pw.pw_uid:
            return None
        return f"not started as root: keeping uid {os.geteuid()} (server.user = {user!r})"
    data = config.server.data_dir
    for root, dirs, files in os.walk(data):
        for name in (root, *(os.path.join(root, n) for n in (*dirs, *files))):
            st = os.lstat(name)
            if st.st_uid != pw.pw_uid or st.st_gid != gid:
                os.lchown(name, pw.pw_uid, gid)
    os.setgroups([])
    os.setgid(gid)
    os.setuid(pw.pw_uid)  # glibc applies it to every thread of the process
    return f"running as {user} (uid {pw.pw_uid}, gid {gid})"


async def release_dead_locks(ctx: AppContext) -> int:
    """POP3 maildrop locks left by a process of this host that no longer runs (a crash).

    Owners name host, PID, boot and process start time (`pop3d.locks`), so a PID that now
    belongs to a zombie or to an unrelated process does not keep a dead session's lock.
    Other hosts' locks are theirs to release (or expire).
    """
    from mailwright.pop3d.locks import owner_is_dead

    host = ctx.node_id.rsplit(":", 1)[0]
    released = 0
    for account_id, owner in await ctx.store.list_maildrop_locks():
        if owner_is_dead(owner, host):
            await ctx.store.unlock_maildrop(account_id, owner)
            released += 1
    return released


async def gc_loop(ctx: AppContext) -> None:
    while True:
        await asyncio.sleep(3600)
        try:
            n = await ctx.store.collect_garbage()
            if n:
                event(log, "garbage collected", files=n)
        except Exception:  # noqa: BLE001
            log.exception("garbage collection failed")


async def run_server(
    config: Config, *, ready: asyncio.Event | None = None, worker: WorkerRole | None = None
) -> int:
    """Run until SIGTERM/SIGINT; returns the exit status.

    Every configured listener and feature starts, or none does: a component that cannot start
    is a one-line error naming it and exit status 1 (an invalid configuration, such as a TLS
    certificate that cannot be read, raises ConfigError: exit status 2).

    `worker`: this process is one of several (`workers.supervisor`), serving the supervisor's
    sockets; the services that must run once run only in the primary worker.
    """
    once = worker is None or worker.primary
    try:
        ctx = await build_context(config, worker)
    except StartupError as e:
        print(f"mailwright: {e}", file=sys.stderr)
        return 1
    limits = config.limits
    listeners = ListenerSet(
        ctx.ssl_context,
        max_connections=limits.max_connections,
        max_per_ip=limits.max_connections_per_ip,
        # Each listener its own budget, so that one protocol's idle sessions cannot take
        # another's (the MX keeps its share whatever POP3 or IMAP clients do).
        listener_share=max(1, limits.max_connections // max(1, len(config.listeners))),
        handshake_timeout=limits.tls_handshake_timeout,
        login_timeout=limits.login_timeout,
        allow_plaintext_loopback=config.tls.allow_plaintext_loopback,
        refuse=ctx.authenticator.is_banned,
        counts=worker.counts if worker is not None else None,
    )
    ctx.listeners = listeners
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        # Unreferenced blobs from a crash are removed before anything can reference them again
        # (with several workers, only before the first of them serves).
        if worker is None or worker.first:
            removed = await ctx.store.collect_garbage(0)  # type: ignore[call-arg]
            if removed:
                event(log, "garbage collected at start", files=removed)
        if released := await release_dead_locks(ctx):
            event(log, "released maildrop locks of dead processes", locks=released)
        for lc in config.listeners:
            sock = worker.sockets[lc.name] if worker is not None else None
            await listeners.add(lc, handler_for(ctx, lc), sock)
    except (BindError, StartupError) as e:
        print(f"mailwright: {e}", file=sys.stderr)
        await listeners.shutdown(0)
        await ctx.store.close()
        return 1
    try:
        dropped = drop_privileges(config) if worker is None else None  # the supervisor did
    except OSError as e:
        print(f"mailwright: cannot drop privileges to {config.server.user!r}: {e}", file=sys.stderr)
        await listeners.shutdown(0)
        await ctx.store.close()
        return 1
    if dropped:
        event(log, "privileges", detail=dropped)
    if once:
        ctx.background.append(asyncio.create_task(retention_loop(ctx)))
        ctx.background.append(asyncio.create_task(gc_loop(ctx)))
        if ctx.spam is not None and ctx.spam.settings.learn:
            ctx.background.append(asyncio.create_task(ctx.spam.learn_loop()))
        if config.dmarc.send_reports:
            ctx.background.append(asyncio.create_task(dmarc_report_loop(ctx)))
        if ctx.acme is not None:
            # After the listeners: the ACME server validates through them.
            ctx.background.append(asyncio.create_task(ctx.acme.run()))
    elif ctx.outbound.settings.tls_reports:
        # Every worker delivers (leases keep two from taking one entry); the daily TLS-RPT
        # reports go out from the primary only.
        ctx.outbound.settings = dataclasses.replace(ctx.outbound.settings, tls_reports=False)
    await ctx.outbound.start()
    if worker is not None:
        if ctx.acme is not None:  # the primary's challenges and certificates reach every worker
            from mailwright.workers.channel import PeerRequests

            requests = PeerRequests(worker.channel, worker.index, worker.count - 1,
                                    ctx.acme.apply_peer_request)  # fmt: skip
            ctx.acme.peers, ctx.acme.peer_count = requests.ask, worker.count - 1
        worker.channel.start(loop)
        if ctx.acme is not None and not worker.primary:  # restarted during a challenge?
            ctx.background.append(asyncio.create_task(ctx.acme.peers("s")))
        if worker.metrics is not None:
            ctx.worker_metrics = worker.metrics
            ctx.background.append(asyncio.create_task(_publish_metrics(ctx, worker.metrics)))
        worker.report_ready()
    else:
        ports = " ".join(f"{lc.protocol}={lc.address}:{port}" for lc, port in listeners.bound())
        print(f"mailwright: ready ({ports})", file=sys.stderr, flush=True)
    if ready is not None:
        ready.set()
    await stop.wait()
    event(log, "shutting down", connections=listeners.active)
    if worker is not None:
        worker.channel.stop(loop)
    await listeners.shutdown()
    await ctx.outbound.stop()
    for t in ctx.background:
        t.cancel()
    await asyncio.gather(*ctx.background, return_exceptions=True)
    await settle_trace()  # refusals recorded in the background, before the store closes
    await ctx.store.close()
    return 0


async def _publish_metrics(ctx: AppContext, shared: SharedMetrics) -> None:
    """Keep this worker's row of the shared /metrics values fresh (a second old at most), for
    the scrapes that another worker answers."""
    from mailwright.metrics import values

    while True:
        shared.publish(values(ctx))
        await asyncio.sleep(1.0)


def run(config: Config, *, workers: int | None = None) -> int:
    """Serve `config`: in this process, or in `workers` processes under a supervisor
    (`[server] workers`, 0 = one per core; `serve --workers` overrides it)."""
    count = config.server.workers if workers is None else workers
    if count == 0:
        count = os.cpu_count() or 1
    if count > 1:
        from mailwright.workers.supervisor import supervise

        return supervise(config, count)
    return run_worker(config)


def run_worker(config: Config, worker: WorkerRole | None = None) -> int:
    from mailwright.heap import fix_mmap_threshold

    fix_mmap_threshold()  # freed argon2 work areas go back to the system (heap.py)
    runner: Any = asyncio.run
    if sys.platform != "win32":  # uvloop is a dependency wherever it exists
        import uvloop

        runner = uvloop.run
    return int(runner(run_server(config, worker=worker)))
