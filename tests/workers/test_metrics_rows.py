"""`metrics.SharedMetrics` across a real fork: what a child publishes its parent reads."""

from __future__ import annotations

import os

from mailwright.metrics import METRICS, SharedMetrics


def test_a_childs_values_reach_its_parent_and_clear_forgets_them() -> None:
    shared = SharedMetrics(2)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            shared.attach(1).publish({"auth_failures_total": 3, "connections_active": 2})
            code = 0
        finally:
            os._exit(code)
    assert os.waitpid(pid, 0)[1] == 0
    shared.publish({"auth_failures_total": 1})
    assert shared.rows() == {0: {"auth_failures_total": 1.0},
                             1: {"auth_failures_total": 3.0, "connections_active": 2.0}}  # fmt: skip
    shared.clear(1)
    assert shared.rows()[1] == {}
    assert len({name for name, _k, _h in METRICS}) == len(METRICS)
