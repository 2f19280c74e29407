"""The whole journey in network namespaces (issue 4, item 6): see examples/outbound_journey.py.

Runs where network namespaces can be made (root with iproute2, as scripts/test.sh runs it);
says why it is skipped anywhere else (a skip CI does not allow: tests/skip-allowlist.txt).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "outbound_journey.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("outbound_journey", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["outbound_journey"] = module
    spec.loader.exec_module(module)
    return module


def test_outbound_journey_between_namespaces() -> None:
    journey_mod = load_example()
    reason = journey_mod.can_run()
    if reason:
        pytest.skip(f"network-namespace journey: {reason}")
    with journey_mod.Journey() as journey:
        subject = "Hello Jane from the sender namespace"
        journey.jim_sends(subject, "Hi Jane,\n\nthe long way round.\n\nJim\n")
        via_imap = journey.jane_reads_imap(subject)
        assert b"the long way round" in via_imap
        assert via_imap.count(b"Received:") >= 2  # Jim's submission hop and Jane's MX hop
        via_pop3 = journey.jane_reads_pop3(subject)
        assert b"the long way round" in via_pop3
