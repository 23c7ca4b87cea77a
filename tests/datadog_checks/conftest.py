"""SDK tests run with no host: the builtin modules are absent, submissions go to the stubs."""

from __future__ import annotations

import sys

import pytest

from datadog_checks.base.stubs import aggregator as stub_aggregator
from datadog_checks.base.stubs import datadog_agent as stub_datadog_agent

HOST_MODULES = ("aggregator", "datadog_agent", "_util", "tagger", "containers", "kubeutil", "util")


@pytest.fixture(autouse=True)
def no_host(monkeypatch):
    for name in HOST_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    stub_aggregator.reset()
    stub_datadog_agent.reset()


@pytest.fixture
def aggregator():
    return stub_aggregator


@pytest.fixture
def datadog_agent():
    return stub_datadog_agent
