"""Smoke test of the benchmark harness: ``python -m bench --quick`` runs and writes a report.

No timing is asserted: the figures of a quick run mean nothing. Reference servers that cannot
be installed here are reported "not available" by the harness itself, with the reason, and
the test prints those reasons.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_quick_writes_report(tmp_path: Path) -> None:
    if sys.platform != "linux":
        pytest.skip("the harness reads /proc and runs Debian's servers: Linux only")
    page = tmp_path / "benchmarks.md"
    charts = tmp_path / "charts"
    cmd = [sys.executable, "-m", "bench", "--quick", "--report", str(page), "--charts", str(charts)]
    if os.geteuid() != 0:
        cmd.append("--no-install")
    cp = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert cp.returncode == 0, cp.stderr[-4000:]
    data = json.loads((charts / "results.json").read_text())
    names = [w["name"] for w in data["workloads"]]
    assert names == ["smtp-ingest", "smtp-fanout", "imap-mixed", "imap-idle", "imap-large", "pop3",
                     "imap-sessions"]
    text = page.read_text()
    assert "## Protocol benchmarks" in text
    assert "python -m bench --quick" in text
    for wl in data["workloads"]:
        assert f"### {wl['title']}" in text
        assert "mailwright" in wl["servers"], wl["name"]
        for name, srv in wl["servers"].items():
            # Every server is either measured on every run or says why it is not.
            if srv["status"] == "ok":
                assert len(srv["runs"]) == data["meta"]["sizes"]["runs"] or wl["name"] in (
                    "imap-idle", "imap-large"), (wl["name"], name)
                assert all(r["values"] for r in srv["runs"])
                assert (charts / f"{wl['name']}.png").exists()
            else:
                assert srv["reason"], (wl["name"], name)
                print(f"{wl['name']}: {name} {srv['status']}: {srv['reason']}")
    # The harness stops everything it started and removes its scratch directory.
    m = re.search(r"scratch directory (\S+)", cp.stderr)
    assert m, cp.stderr[-2000:]
    scratch = m.group(1)
    assert not Path(scratch).exists()
    leftover = subprocess.run(["pgrep", "-f", scratch], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", leftover.stdout
