"""A real authoritative DNS server on loopback for tests.

Tests that touch DNS (MX walk, SPF, DKIM, DMARC, outbound delivery) talk to this server over real
UDP and TCP sockets instead of mocking the resolver, so the whole dnspython path (wire format,
truncation, rcodes, timeouts) is exercised.

Usage::

    with DNSServer() as dns:
        dns.add("example.test", "MX", "10 mx.example.test.")
        dns.add("mx.example.test", "A", "127.0.0.1")
        dns.set_behaviour("broken.test", Behaviour.SERVFAIL)
        resolver = Resolver(nameservers=dns.nameservers)

Answers carry TTL 0 unless ``ttl=`` says otherwise, so a resolver's cache (on by default in
``mailwright.dns.resolver``) never hides a record a test changes while the server runs.

``records`` is a plain mutable mapping ``name -> rdtype -> [rdata text]`` that may be changed while
the server runs; names are matched case-insensitively with or without a trailing dot. A name that
is absent answers NXDOMAIN; a name present without the asked type answers NOERROR with no data
(a CNAME at the name is followed within the mapping). ``behaviours`` overrides the answer for a
name, or for ``(name, rdtype)``. TXT rdata not starting with a double quote is quoted for you, so
``dns.add("x.test", "TXT", "v=spf1 -all")`` works.

``authenticated`` is a set of names whose answers carry the AD bit when the query asks for it
(AD or DO set, RFC 6840 5.7): the server then plays a trusted validating resolver that found the
name DNSSEC-secure, which is how DANE tests (RFC 7672) tell a signed zone from an unsigned one.
TLSA rdata is given in presentation form, e.g. ``dns.add("_25._tcp.mx.test", "TLSA", "3 1 1
<hex>")``.

``add_zone(zone)`` serves a whole dnspython zone instead, e.g. one really signed by
``tests.support.signedzone``: RRSIGs with DO, NSEC/NSEC3 proofs for NODATA, NXDOMAIN and
wildcard answers, DS answered from the parent side of a cut, so that a validator (ours, or
unbound through a stub zone) checks real signatures.

A pytest fixture is one line in a conftest::

    @pytest.fixture
    def dns_server() -> Iterator[DNSServer]:
        with DNSServer() as server:
            yield server
"""

from __future__ import annotations

import enum
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType

import dns.dnssec
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

__all__ = ["Behaviour", "DNSServer", "Query", "dns_server_fixture"]


class Behaviour(enum.Enum):
    """How the server treats a query instead of answering from ``records``."""

    NORMAL = "normal"
    NXDOMAIN = "nxdomain"  # even if the name is in records
    SERVFAIL = "servfail"
    REFUSED = "refused"
    TIMEOUT = "timeout"  # never answer (the client times out)
    GARBAGE = "garbage"  # answer with bytes that are not a DNS message
    TRUNCATE = "truncate"  # UDP answers carry TC and no data, forcing a retry over TCP


@dataclass(frozen=True, slots=True)
class Query:
    """One query the server received, for assertions in tests."""

    name: str
    rdtype: str
    transport: str  # "udp" or "tcp"


def _norm(name: str) -> str:
    return name.rstrip(".").lower()


class DNSServer:
    """Authoritative-only DNS server on 127.0.0.1 (UDP and TCP on one ephemeral port)."""

    def __init__(
        self,
        records: Mapping[str, Mapping[str, list[str]]] | None = None,
        *,
        host: str = "127.0.0.1",
        ttl: int = 0,
    ) -> None:
        self.records: dict[str, dict[str, list[str]]] = {}
        for name, types in (records or {}).items():
            for rdtype, values in types.items():
                self.add(name, rdtype, *values)
        self.behaviours: dict[str | tuple[str, str], Behaviour] = {}
        self.authenticated: set[str] = set()
        self.zones: dict[dns.name.Name, dns.zone.Zone] = {}
        self.queries: list[Query] = []
        self.host = host
        self.ttl = ttl
        self.port = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None

    # -- zone editing --------------------------------------------------------------------------

    def add(self, name: str, rdtype: str, *rdata: str) -> None:
        """Append records of one type to a name (creating the name)."""
        types = self.records.setdefault(_norm(name), {})
        types.setdefault(rdtype.upper(), []).extend(rdata)

    def set(self, name: str, rdtype: str, *rdata: str) -> None:
        """Replace the records of one type at a name."""
        self.records.setdefault(_norm(name), {})[rdtype.upper()] = list(rdata)

    def remove(self, name: str, rdtype: str | None = None) -> None:
        """Drop a whole name (then NXDOMAIN) or one type at it (then no data)."""
        key = _norm(name)
        for existing in [k for k in self.records if _norm(k) == key]:
            if rdtype is None:
                del self.records[existing]
            else:
                types = self.records[existing]
                for t in [t for t in types if t.upper() == rdtype.upper()]:
                    del types[t]

    def set_behaviour(
        self, name: str, behaviour: Behaviour, rdtype: str | None = None
    ) -> None:
        key: str | tuple[str, str] = (
            _norm(name) if rdtype is None else (_norm(name), rdtype.upper())
        )
        self.behaviours[key] = behaviour

    def clear_behaviour(self, name: str, rdtype: str | None = None) -> None:
        key: str | tuple[str, str] = (
            _norm(name) if rdtype is None else (_norm(name), rdtype.upper())
        )
        self.behaviours.pop(key, None)

    def add_zone(self, zone: dns.zone.Zone) -> None:
        """Serve a whole zone (with ``relativize=False`` names), e.g. a DNSSEC-signed one from
        ``tests.support.signedzone``. Names inside a served zone are answered from it, as a
        recursive resolver would: RRSIGs when the query has DO, and for no data or no such
        name the SOA with the NSEC/NSEC3 records that prove it (RFC 4035 3.1.3, RFC 5155 7.2).
        A DS query at a zone's apex is answered by its parent zone (RFC 4035 3.1.4.1)."""
        assert zone.origin is not None
        self.zones[zone.origin] = zone

    @property
    def nameservers(self) -> list[tuple[str, int]]:
        """The value for ``Resolver(nameservers=...)`` / ``[dns] nameservers``."""
        return [(self.host, self.port)]

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def config_value(self) -> str:
        """``host:port`` as written in ``[dns] nameservers`` of a mailwright.toml."""
        return f"{self.host}:{self.port}"

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> DNSServer:
        # Bind UDP on an ephemeral port, then TCP on the same number; retry on the rare clash.
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((self.host, 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((self.host, port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(16)
            break
        else:  # pragma: no cover
            raise RuntimeError("could not bind UDP and TCP on one port")
        udp.settimeout(0.1)
        tcp.settimeout(0.1)
        self._udp, self._tcp, self.port = udp, tcp, port
        self._stop.clear()
        for target in (self._serve_udp, self._serve_tcp):
            thread = threading.Thread(target=target, name=f"dnsserver-{port}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        for sock in (self._udp, self._tcp):
            if sock is not None:
                sock.close()
        self._udp = self._tcp = None

    def __enter__(self) -> DNSServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- answering -----------------------------------------------------------------------------

    def _behaviour(self, name: str, rdtype: str) -> Behaviour:
        found = self.behaviours.get((name, rdtype))
        if found is None:
            found = self.behaviours.get(name, Behaviour.NORMAL)
        return found

    def answer(self, wire: bytes, transport: str) -> bytes | None:
        """Return the reply bytes for one query, or None to stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if not query.question:
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        qname = _norm(question.name.to_text())
        rdtype = dns.rdatatype.to_text(question.rdtype)
        with self._lock:
            self.queries.append(Query(qname, rdtype, transport))
        behaviour = self._behaviour(qname, rdtype)
        if behaviour is Behaviour.TIMEOUT:
            return None
        if behaviour is Behaviour.GARBAGE:
            # Keep the query id so the client takes it as the reply, then fail to parse it.
            return wire[:2] + b"\x81\x80\xff\xff this is not DNS"
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if behaviour is Behaviour.SERVFAIL:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        if behaviour is Behaviour.REFUSED:
            response.set_rcode(dns.rcode.REFUSED)
            return response.to_wire()
        if behaviour is Behaviour.NXDOMAIN:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response.to_wire()
        if behaviour is Behaviour.TRUNCATE and transport == "udp":
            response.flags |= dns.flags.TC
            return response.to_wire()
        zone = self._zone_for(question.name, question.rdtype)
        if zone is not None:
            _answer_from_zone(response, zone, question.name, question.rdtype,
                              bool(query.ednsflags & dns.flags.DO))
        else:
            self._fill(response, qname, question.rdtype)
        wants_ad = bool(query.flags & dns.flags.AD) or bool(query.ednsflags & dns.flags.DO)
        if wants_ad and qname in {_norm(n) for n in self.authenticated}:
            response.flags |= dns.flags.AD  # RFC 4035 3.2.3: the answer was validated
        max_size = 65535 if transport == "tcp" else 512
        if query.edns >= 0:
            max_size = 65535 if transport == "tcp" else max(512, query.payload)
        try:
            return response.to_wire(max_size=max_size)
        except dns.exception.TooBig:
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA | dns.flags.TC
            return response.to_wire()

    def _zone_for(self, qname: dns.name.Name, qtype: int) -> dns.zone.Zone | None:
        best: dns.zone.Zone | None = None
        for origin, zone in list(self.zones.items()):
            if not qname.is_subdomain(origin):
                continue
            if qtype == dns.rdatatype.DS and qname == origin:
                continue  # the parent's side of the cut
            if best is None or len(origin) > len(best.origin):  # type: ignore[arg-type]
                best = zone
        return best

    def _fill(self, response: dns.message.Message, qname: str, qtype: int) -> None:
        # Tests may edit ``records`` directly with any case or a final dot.
        zone = {_norm(k): {t.upper(): v for t, v in types.items()}
                for k, types in list(self.records.items())}
        name = qname
        for _ in range(8):  # bounded CNAME chain
            types = zone.get(name)
            if types is None:
                if name == qname:
                    response.set_rcode(dns.rcode.NXDOMAIN)
                return
            wanted = dns.rdatatype.to_text(dns.rdatatype.RdataType.make(qtype))
            if wanted in types or qtype == dns.rdatatype.ANY:
                selected = types.items() if qtype == dns.rdatatype.ANY else [(wanted, types[wanted])]
                for type_text, values in selected:
                    if values:
                        response.answer.append(self._rrset(name, type_text, values))
                return
            cname = types.get("CNAME")
            if not cname:
                return  # NOERROR, no data
            response.answer.append(self._rrset(name, "CNAME", cname[:1]))
            name = _norm(cname[0])

    def _rrset(self, name: str, rdtype: str, values: list[str]) -> dns.rrset.RRset:
        owner = dns.name.from_text(name, origin=dns.name.root)
        rrset = dns.rrset.RRset(owner, dns.rdataclass.IN, dns.rdatatype.from_text(rdtype))
        for text in values:
            if rdtype == "TXT" and not text.startswith('"'):
                text = _quote_txt(text)
            rdata = dns.rdata.from_text(
                dns.rdataclass.IN, rdtype, text, origin=dns.name.root, relativize=False
            )
            rrset.add(rdata, self.ttl)
        return rrset

    # -- transports ----------------------------------------------------------------------------

    def _serve_udp(self) -> None:
        sock = self._udp
        assert sock is not None
        while not self._stop.is_set():
            try:
                wire, peer = sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                reply = self.answer(wire, "udp")
            except Exception:  # a bug in a test zone must not kill the server thread
                reply = None
            if reply is not None:
                try:
                    sock.sendto(reply, peer)
                except OSError:
                    pass

    def _serve_tcp(self) -> None:
        sock = self._tcp
        assert sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._tcp_conn, args=(conn,), daemon=True)
            thread.start()

    def _tcp_conn(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        with conn:
            while not self._stop.is_set():
                try:
                    head = _recv_exact(conn, 2)
                    if head is None:
                        return
                    wire = _recv_exact(conn, int.from_bytes(head, "big"))
                    if wire is None:
                        return
                except OSError:
                    return
                try:
                    reply = self.answer(wire, "tcp")
                except Exception:
                    reply = None
                if reply is None:
                    continue
                try:
                    conn.sendall(len(reply).to_bytes(2, "big") + reply)
                except OSError:
                    return


def _rrset_of(zone: dns.zone.Zone, name: dns.name.Name, rdtype: int,
              covers: int = 0) -> dns.rrset.RRset | None:
    rdataset = zone.get_rdataset(name, rdtype, covers)  # type: ignore[arg-type]
    if rdataset is None:
        return None
    rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdataset.rdtype, rdataset.covers)
    rrset.update(rdataset)
    return rrset


def _with_sigs(section: list[dns.rrset.RRset], zone: dns.zone.Zone, name: dns.name.Name,
               rdtype: int, dnssec: bool) -> bool:
    rrset = _rrset_of(zone, name, rdtype)
    if rrset is None:
        return False
    section.append(rrset)
    if dnssec:
        sigs = _rrset_of(zone, name, dns.rdatatype.RRSIG, rdtype)
        if sigs is not None:
            section.append(sigs)
    return True


def _nsec3_owner(zone: dns.zone.Zone, name: dns.name.Name) -> dns.name.Name | None:
    """The NSEC3 owner matching or covering ``name`` (None: the zone has no NSEC3 chain)."""
    origin = zone.origin
    assert origin is not None
    param = zone.get_rdataset(origin, dns.rdatatype.NSEC3PARAM)
    if param is None:
        return None
    p = param[0]
    h = dns.dnssec.nsec3_hash(name, p.salt, p.iterations, p.algorithm).lower()
    owners = sorted(n.labels[0].decode() for n in zone.nodes
                    if zone.get_rdataset(n, dns.rdatatype.NSEC3) is not None)
    best = owners[-1]  # the last one covers what sorts before the first
    for owner in owners:
        if owner <= h:
            best = owner
    return dns.name.Name((best.encode(), *origin.labels))


def _nsec_owner(zone: dns.zone.Zone, name: dns.name.Name) -> dns.name.Name | None:
    """The NSEC owner at or before ``name`` in canonical order (the one matching or covering)."""
    with_nsec = sorted(n for n in zone.nodes if zone.get_rdataset(n, dns.rdatatype.NSEC))
    if not with_nsec:
        return None  # an unsigned zone
    best = with_nsec[-1]
    for owner in with_nsec:
        if owner <= name:
            best = owner
    return best


def _proofs(zone: dns.zone.Zone, names: list[dns.name.Name]) -> list[dns.name.Name]:
    """The NSEC3 owners, else NSEC owners, that match or cover each name."""
    nsec3 = [_nsec3_owner(zone, n) for n in names]
    if all(o is not None for o in nsec3):
        return [o for o in nsec3 if o is not None]
    return [o for o in (_nsec_owner(zone, n) for n in names) if o is not None]


def _answer_from_zone(response: dns.message.Message, zone: dns.zone.Zone,
                      qname: dns.name.Name, qtype: int, dnssec: bool) -> None:
    origin = zone.origin
    assert origin is not None
    qname = qname.canonicalize()
    if _with_sigs(response.answer, zone, qname, qtype, dnssec):
        return
    if qtype != dns.rdatatype.CNAME and _with_sigs(response.answer, zone, qname,
                                                   dns.rdatatype.CNAME, dnssec):
        return
    names = sorted(zone.nodes)

    def present(name: dns.name.Name) -> bool:
        return zone.get_node(name) is not None or any(n.is_subdomain(name) for n in names)

    exists = present(qname)
    nsec3 = _nsec3_owner(zone, origin) is not None
    closest, next_closer = qname, qname
    if not exists:
        closest = qname.parent()
        while not present(closest):
            next_closer, closest = closest, closest.parent()
        wildcard = dns.name.Name((b"*", *closest.labels))
        rdataset = zone.get_rdataset(wildcard, qtype)  # type: ignore[arg-type]
        if rdataset is not None:
            # RFC 4035 3.1.3.3: the answer synthesised from the wildcard, its RRSIG (whose
            # labels field tells it), and the proof that the name itself does not exist.
            rrset = dns.rrset.RRset(qname, dns.rdataclass.IN, rdataset.rdtype)
            rrset.update(rdataset)
            response.answer.append(rrset)
            if dnssec:
                sigs = zone.get_rdataset(wildcard, dns.rdatatype.RRSIG, qtype)  # type: ignore[arg-type]
                if sigs is not None:
                    sig_rrset = dns.rrset.RRset(qname, dns.rdataclass.IN, dns.rdatatype.RRSIG,
                                                rdataset.rdtype)
                    sig_rrset.update(sigs)
                    response.answer.append(sig_rrset)
                kind = dns.rdatatype.NSEC3 if nsec3 else dns.rdatatype.NSEC
                for owner in _proofs(zone, [next_closer if nsec3 else qname]):
                    _with_sigs(response.authority, zone, owner, kind, True)
            return
        if zone.get_node(wildcard) is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        # else NODATA through the wildcard (RFC 4035 3.1.3.4): proofs below name the wildcard
    _with_sigs(response.authority, zone, origin, dns.rdatatype.SOA, dnssec)
    if not dnssec:
        return
    if exists:
        wanted = _proofs(zone, [qname])
    elif nsec3:
        # RFC 5155 7.2.2: closest encloser, next closer name, wildcard at the encloser.
        wanted = _proofs(zone, [closest, next_closer, dns.name.Name((b"*", *closest.labels))])
    else:
        # RFC 4035 3.1.3.2: the name's covering NSEC, and the wildcard's.
        wanted = _proofs(zone, [qname, dns.name.Name((b"*", *closest.labels))])
    kind = dns.rdatatype.NSEC3 if nsec3 else dns.rdatatype.NSEC
    for owner in dict.fromkeys(wanted):
        _with_sigs(response.authority, zone, owner, kind, True)


def _recv_exact(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _quote_txt(text: str) -> str:
    # One TXT record may hold many 255-byte strings; split long text so tests can publish DKIM keys.
    escaped = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
    return " ".join('"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"' for part in escaped)


def dns_server_fixture() -> Iterator[DNSServer]:
    """Generator for ``pytest.fixture``: ``dns_server = pytest.fixture(dns_server_fixture)``."""
    with DNSServer() as server:
        yield server
