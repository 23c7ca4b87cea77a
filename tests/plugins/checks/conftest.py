"""Fixtures of the checks plugin tests (helpers live in checks_test_support)."""

from __future__ import annotations

import sys

import pytest
from checks_test_support import ChecksEnv

from plugins.checks.builtin_modules import BUILTIN_NAMES


@pytest.fixture
def checks_env(tmp_path):
    env = ChecksEnv(tmp_path)
    yield env
    for name in env.names:
        sys.modules.pop(name, None)
    for path in (str(env.checksd),):
        while path in sys.path:
            sys.path.remove(path)
    for name in BUILTIN_NAMES:
        assert name not in sys.modules, f"builtin module {name} left installed"
