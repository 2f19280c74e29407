"""PSS per IMAP session hibernated in IDLE, by kind of connection: plain, TLS (imaps),
COMPRESS=DEFLATE, and TLS with COMPRESS.

One server in this process on uvloop (the tests' listeners: SQLite, cheap argon2id hashes, an
INBOX of 100 messages); the clients run in a child process, so only the server's memory is
read (/proc/self/smaps_rollup). Each kind: a warm-up of 50 sessions closed again, then the PSS
before and after `n` sessions that SELECT INBOX and IDLE, divided by `n`.

    python -m bench.idle_variants [--sessions N] [--census] [--kinds plain,tls,...]
                                  [--malloc] [--trim] [--mmap-threshold BYTES]
    python -m bench.idle_variants --openssl [--sessions N]

Kinds measured in one process influence each other (memory one kind freed is reused by the
next): for figures of each alone, run one kind per invocation.

With ``--census``, plain sessions only, with what each one keeps: objects by type (gc) and
bytes by line of code (tracemalloc), per session.

With ``--malloc``, where each kind's bytes are in the C heap: glibc's own count (mallinfo2:
bytes in use, bytes freed but kept, blocks served by mmap) and the PSS by kind of mapping (the
heap, pymalloc's 1 MiB arenas, single mmap'd blocks such as uvloop's 256 KiB TLS read buffers),
per session. With ``--trim``, malloc_trim(0) before each reading, to tell memory in use from
memory freed but kept (fragmentation).

With ``--openssl``, no server: the bytes OpenSSL keeps for the server side of a TLS connection
over memory BIOs (the server's context, a handshake, three exchanges as LOGIN, SELECT, IDLE),
counted by malloc, and the connection's SSL mode.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import ssl
import sys
import tempfile
import tracemalloc
import zlib
from collections import Counter
from pathlib import Path

KINDS = ("plain", "tls", "compress", "tls+compress")
USER = "idle@example.test"


def pss() -> int:
    with open("/proc/self/smaps_rollup", "rb") as f:
        for line in f:
            if line.startswith(b"Pss:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no Pss in smaps_rollup")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _Mallinfo2
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


def heap_state() -> dict[str, int]:
    """glibc's counts (main arena and the threads' arenas together) and PSS by mapping kind."""
    m = _libc().mallinfo2()
    out = {"malloc in use": m.uordblks + m.hblkhd, "malloc free, kept": m.fordblks,
           "main heap size": m.arena,
           "mmap'd blocks": m.hblks}
    kinds: Counter[str] = Counter()
    name = ""
    size = 0
    with open("/proc/self/smaps", "rb") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if b"-" in first and not first.endswith(b":"):
                lo, hi = first.split(b"-")
                size = int(hi, 16) - int(lo, 16)
                parts = line.split()
                name = parts[5].decode() if len(parts) > 5 else ""
            elif first == b"Pss:":
                pss_kb = int(line.split()[1])
                if name == "[heap]":
                    kind = "PSS [heap]"
                elif name:
                    kind = "PSS files, stacks"
                elif size >= 64 << 20:
                    kind = "PSS thread arenas"
                else:  # adjacent mappings merge: cannot be told apart by size
                    kind = "PSS other anonymous maps (pymalloc arenas, mmap'd blocks)"
                kinds[kind] += pss_kb * 1024
    out.update(kinds)
    return out


def openssl_census(n: int) -> None:
    from mailwright.tls import make_self_signed, server_context

    libssl = ctypes.CDLL("libssl.so.3")
    libssl.SSL_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    libssl.SSL_ctrl.restype = ctypes.c_long
    libc = _libc()

    def in_use() -> int:
        gc.collect()
        m = libc.mallinfo2()
        return int(m.uordblks + m.hblkhd)

    tmp = Path(tempfile.mkdtemp())
    make_self_signed("localhost", tmp / "cert.pem", tmp / "key.pem")
    server = server_context(tmp / "cert.pem", tmp / "key.pem")
    client = ssl.create_default_context()
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE

    def drain(obj: ssl.SSLObject) -> None:
        try:
            while obj.read(65536):
                pass
        except ssl.SSLWantReadError:
            pass

    def pair() -> tuple[ssl.SSLObject, ssl.SSLObject]:
        s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
        s = server.wrap_bio(s_in, s_out, server_side=True)
        c = client.wrap_bio(c_in, c_out)
        for _ in range(10):
            for step in (c.do_handshake, s.do_handshake):
                try:
                    step()
                except ssl.SSLWantReadError:
                    pass
            up, down = c_out.read(), s_out.read()
            s_in.write(up)
            c_in.write(down)
            if not up and not down:
                break
        for line in (b"a LOGIN u p\r\n", b"s SELECT INBOX\r\n", b"i IDLE\r\n"):
            c.write(line)
            s_in.write(c_out.read())
            drain(s)
            s.write(b"* 100 EXISTS\r\n" * 20)
            c_in.write(s_out.read())
            drain(c)
        return s, c

    for _ in range(50):
        pair()
    before = in_use()
    pairs = [pair() for _ in range(n)]
    servers = [s for s, _ in pairs]
    del pairs
    print(f"server side of a TLS connection: {(in_use() - before) / n:.0f} bytes in use (malloc)")
    ssl_ptr = ctypes.c_void_p.from_address(id(servers[0]._sslobj) + 24).value  # PySSLSocket.ssl
    mode = libssl.SSL_ctrl(ssl_ptr, 33, 0, None)  # SSL_CTRL_MODE
    print(f"SSL mode 0x{mode:x}; SSL_MODE_RELEASE_BUFFERS (0x10) {'on' if mode & 0x10 else 'off'}")


# -- the clients (child process) ---------------------------------------------------------------

async def _session(host: str, port: int, kind: str, password: str) -> asyncio.StreamWriter:
    ctx = None
    if kind.startswith("tls"):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
    deflate = inflate = None
    buf = b""

    async def line() -> bytes:
        nonlocal buf
        while b"\r\n" not in buf:
            data = await reader.read(65536)
            if not data:
                raise EOFError
            buf += inflate.decompress(data) if inflate is not None else data
        out, _, buf = buf.partition(b"\r\n")
        return out

    def send(data: bytes) -> None:
        if deflate is not None:
            data = deflate.compress(data) + deflate.flush(zlib.Z_SYNC_FLUSH)
        writer.write(data)

    async def cmd(tag: bytes, text: bytes) -> None:
        send(tag + b" " + text + b"\r\n")
        while not (await line()).startswith(tag + b" "):
            pass

    await line()
    await cmd(b"l", b'LOGIN %s "%s"' % (USER.encode(), password.encode()))
    if kind.endswith("compress"):
        await cmd(b"z", b"COMPRESS DEFLATE")
        deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        inflate = zlib.decompressobj(-15)
    await cmd(b"s", b"SELECT INBOX")
    send(b"i IDLE\r\n")
    assert (await line()).startswith(b"+ ")
    return writer


async def clients(host: str, port: int, kind: str, n: int, password: str) -> None:
    sem = asyncio.Semaphore(16)

    async def one() -> asyncio.StreamWriter:
        async with sem:
            return await _session(host, port, kind, password)

    writers = await asyncio.gather(*(one() for _ in range(n)))
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until closed
    for w in writers:
        w.close()


# -- the server (this process) -----------------------------------------------------------------

def _types() -> Counter[str]:
    return Counter(type(o).__name__ for o in gc.get_objects())


async def measure(n: int, census: bool = False, kinds: tuple[str, ...] = KINDS,
                  malloc: bool = False, trim: bool = False) -> dict[str, float]:
    from tests.integration.imap_support import PASSWORD, start_imap_server

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        srv = await start_imap_server(Path(tmp))
        srv.listeners.max_per_ip = 10 * n
        acc = await srv.add_user("idle")
        for i in range(100):
            await srv.deliver(acc, b"Subject: m%d\r\n\r\nbody\r\n" % i)
        try:
            for kind in kinds[:1] if census else kinds:
                home = srv.homes["imaps" if kind.startswith("tls") else "imap"]
                port = srv.tls_port if kind.startswith("tls") else srv.port
                for count, record in ((50, False), (n, True)):
                    gc.collect()
                    await asyncio.sleep(0.5)
                    if census and record:
                        types = _types()
                        tracemalloc.start()
                        snap = tracemalloc.take_snapshot()
                    if trim:
                        _libc().malloc_trim(0)
                    before = pss()
                    heap_before = heap_state() if malloc and record else {}
                    proc = await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "bench.idle_variants", "--client", kind,
                        "--port", str(port), "--sessions", str(count), "--password", PASSWORD,
                        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    )
                    assert proc.stdout is not None and proc.stdin is not None
                    assert (await proc.stdout.readline()).strip() == b"ready"
                    while home.hibernated < count:
                        await asyncio.sleep(0.05)
                    await asyncio.sleep(1.0)
                    if census and record:
                        gc.collect()
                        grown = _types() - types
                        print("objects per session:", ", ".join(
                            f"{t} {c / count:.2f}" for t, c in grown.most_common(20)))
                        noise = [tracemalloc.Filter(False, tracemalloc.__file__)]
                        stats = tracemalloc.take_snapshot().filter_traces(noise).compare_to(
                            snap.filter_traces(noise), "lineno")
                        tracemalloc.stop()
                        total = sum(st.size_diff for st in stats)
                        print(f"tracemalloc: {total / count:.0f} bytes per session; by line:")
                        for st in stats[:15]:
                            print(f"  {st.size_diff / count:7.0f}  {st.traceback[0]}")
                    if trim:
                        _libc().malloc_trim(0)
                    if malloc and record:
                        heap_after = heap_state()
                        print(f"{kind}, per session:", ", ".join(
                            f"{k} {(heap_after.get(k, 0) - heap_before.get(k, 0)) / count:.0f}"
                            + ("" if k == "mmap'd blocks" else " B")
                            for k in sorted(heap_after.keys() | heap_before.keys())))
                    if record:
                        out[kind] = (pss() - before) / count / 1024
                        print(f"{kind}: {out[kind]:.2f} KiB PSS per hibernated session "
                              f"({count} sessions)", flush=True)
                    proc.stdin.close()
                    await proc.wait()
                    while home.hibernated:
                        await asyncio.sleep(0.05)
        finally:
            await srv.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--client", choices=KINDS)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--password", default="")
    ap.add_argument("--census", action="store_true")
    ap.add_argument("--malloc", action="store_true", help="C heap and mappings, per session")
    ap.add_argument("--trim", action="store_true", help="malloc_trim(0) before each reading")
    ap.add_argument("--mmap-threshold", type=int, default=0,
                    help="malloc's mmap threshold instead of heap.py's (e.g. 65536)")
    ap.add_argument("--openssl", action="store_true",
                    help="OpenSSL's bytes per connection over memory BIOs, no server")
    ap.add_argument("--kinds", default=",".join(KINDS),
                    help="comma-separated, measured in this order in one server process")
    args = ap.parse_args()
    import uvloop

    if args.client:
        uvloop.run(clients("127.0.0.1", args.port, args.client, args.sessions, args.password))
        return
    from mailwright.heap import fix_mmap_threshold

    if args.openssl:
        fix_mmap_threshold()
        openssl_census(args.sessions)
        return
    if args.mmap_threshold:
        fix_mmap_threshold(args.mmap_threshold)
    else:
        fix_mmap_threshold()
    uvloop.run(measure(args.sessions, args.census, tuple(args.kinds.split(",")),
                       args.malloc, args.trim))


if __name__ == "__main__":
    main()
