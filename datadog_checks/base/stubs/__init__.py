"""In-process stand-ins for the host's builtin modules, with assertion helpers for tests.

When no host provides ``aggregator``/``datadog_agent``, submissions land here, so a test can
run a check and assert what it sent::

    from datadog_checks.base.stubs import aggregator
    aggregator.reset()
    check.run()
    aggregator.assert_metric("hello.world", value=1, tags=["env:dev"])

The singletons mirror upstream's test contract (``datadog_checks.base.stubs.aggregator``);
they are the one place the SDK keeps process state, because test suites written for
upstream import them by that name.
"""

from __future__ import annotations

from datadog_checks.base.stubs.aggregator import aggregator
from datadog_checks.base.stubs.datadog_agent import datadog_agent

__all__ = ["aggregator", "datadog_agent"]
