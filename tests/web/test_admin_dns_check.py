"""The administration's DNS check against a real DNS server on loopback: every record
`mailwright dns-records` prints is looked up, and the missing and wrong ones are named."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest

from mailwright.dns.check import MISSING, OK, WRONG, compare
from tests.support.dnsserver import DNSServer
from tests.support.server import MailwrightServer
from tests.support.webclient import WebClient

ROW = re.compile(r"<tr><td><code>([^<]+)</code></td><td>(\w+)</td>\s*<td class=\"[\w-]+\">(\w+)</td>")


@pytest.fixture(scope="module")
def dns() -> Iterator[DNSServer]:
    with DNSServer() as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, dns: DNSServer) -> Iterator[MailwrightServer]:
    srv = MailwrightServer(tmp_path_factory.mktemp("dnscheck"))
    srv.use_dns(dns.config_value)
    srv.add_user("root@example.test")
    srv.cli("user", "set", "root@example.test", "--admin", "yes")
    srv.cli("dkim", "generate", "example.test", "--algorithm", "ed25519")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_dns_check_names_missing_and_wrong_records(server: MailwrightServer,
                                                   dns: DNSServer) -> None:
    zone = server.cli("dns-records", "example.test")
    expected = []
    for line in zone.splitlines():
        if not line or line.startswith(";"):
            continue
        name, _ttl, _class, rdtype, rdata = line.split(None, 4)
        expected.append((name.rstrip(".").lower(), rdtype))
        if rdtype == "TXT" and rdata.startswith('"v=DMARC1'):
            continue  # not published: missing
        if rdtype == "TXT" and rdata.startswith('"v=spf1') and name.rstrip(".") == "example.test":
            dns.add(name, "TXT", '"v=spf1 +all"')  # published wrong
            dns.add(name, "TXT", '"google-site-verification=abc"')  # unrelated: ignored
            continue
        dns.add(name, rdtype, rdata)
    c = WebClient(server)
    c.sign_in("root@example.test")
    page = c.get("/admin/dns?domain=example.test")
    assert page.status == 200
    rows = {(html.unescape(n).lower(), t): s for n, t, s in ROW.findall(page.body)}
    assert set(rows) == set(expected), (rows, expected)
    assert rows[("_dmarc.example.test", "TXT")] == MISSING
    assert rows[("example.test", "TXT")] == WRONG
    assert all(s == OK for k, s in rows.items()
               if k not in {("_dmarc.example.test", "TXT"), ("example.test", "TXT")}), rows
    assert "2 of" in page.body and "need attention" in page.body


def test_compare_is_by_dns_data() -> None:
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype

    def rd(t: str, text: str) -> object:
        return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(t), text)

    assert compare("MX", "10 Mail.Example.TEST.", [rd("MX", "10 mail.example.test.")])[0] == OK
    assert compare("MX", "10 mail.example.test.", [rd("MX", "20 mail.example.test.")])[0] == WRONG
    # TXT strings split differently are the same record (RFC 7208 3.3)
    assert compare("TXT", '"v=DKIM1; k=ed25519; p=abc"',
                   [rd("TXT", '"v=DKIM1; k=ed2" "5519; p=abc"')])[0] == OK
    assert compare("TXT", '"v=spf1 a -all"', [rd("TXT", '"other"')])[0] == MISSING
