"""Loading checks as rtloader does: config files, module order, class pick, constructors."""

from __future__ import annotations

import sys
import types

import pytest
from twisted.logger import capturedLogs, formatEvent

from plugins.checks.runner import ChecksSetup

HELLO = """
    from datadog_checks.base import AgentCheck

    __version__ = "0.4.2"

    class HelloCheck(AgentCheck):
        def check(self, instance):
            self.gauge("hello.world", 1, tags=["TAG_KEY:TAG_VALUE"] + self.instance.get("tags", []))
"""


@pytest.fixture
def load(checks_env):
    setups = []

    def do(only=None):
        s = ChecksSetup(checks_env.agent())
        s.install()
        setups.append(s)
        return s.load(only)

    yield do
    for s in setups:
        s.uninstall()


def test_instances_from_confd_dir_and_flat_file(checks_env, load):
    name = checks_env.name()
    checks_env.write_check(name, HELLO)
    checks_env.write_conf(
        name, "init_config:\ninstances:\n  - tags: [a]\n  - min_collection_interval: 30\n"
    )
    (checks_env.confd / f"{name}.yaml").write_text("instances: [{}]\n")
    (checks_env.confd / f"{name}.d" / "empty.yaml").write_text("")
    (checks_env.confd / f"{name}.d" / "conf.yaml.example").write_text("instances: [{x: 1}]\n")
    report = load()
    assert report.errors == {}
    assert [i.interval for i in report.instances] == [15.0, 30.0, 15.0]
    ids = [i.check_id for i in report.instances]
    assert len(set(ids)) == 3
    assert all(cid.startswith(f"{name}:") and len(cid.split(":")[1]) == 16 for cid in ids)
    assert report.instances[0].version == "0.4.2"
    assert report.instances[0].check.check_id == ids[0]
    assert report.instances[0].check.instance == {"tags": ["a"]}


def test_check_id_is_stable(checks_env, load):
    name = checks_env.name()
    checks_env.write_check(name, HELLO)
    checks_env.write_conf(name, "instances: [{a: 1}]\n")
    first, second = load().instances[0], load().instances[0]
    assert first.check_id == second.check_id


def test_default_conf_only_when_nothing_else(checks_env, load):
    name = checks_env.name()
    checks_env.write_check(name, HELLO)
    checks_env.write_conf(name, "instances: [{from: default}]\n", "conf.yaml.default")
    assert [i.config.instance for i in load().instances] == [{"from": "default"}]
    checks_env.write_conf(name, "instances: [{from: conf}]\n")
    assert [i.config.instance for i in load().instances] == [{"from": "conf"}]


def test_both_import_errors_are_reported(checks_env, load):
    name = checks_env.name()
    checks_env.write_conf(name, "instances: [{}]\n")
    report = load()
    assert report.instances == []
    assert report.errors == {
        name: [
            f"unable to import module 'datadog_checks.{name}': "
            f"No module named 'datadog_checks.{name}'",
            f"unable to import module '{name}': No module named '{name}'",
        ]
    }


def test_installed_package_wins_over_checksd(checks_env, load, monkeypatch):
    name = checks_env.name()
    checks_env.write_check(name, HELLO)
    checks_env.write_conf(name, "instances: [{}]\n")
    package = types.ModuleType(f"datadog_checks.{name}")
    from datadog_checks.base import AgentCheck

    class InstalledCheck(AgentCheck):
        pass

    package.InstalledCheck = InstalledCheck
    package.__version__ = "9.9.9"
    monkeypatch.setitem(sys.modules, f"datadog_checks.{name}", package)
    report = load()
    assert type(report.instances[0].check) is InstalledCheck
    assert report.instances[0].version == "9.9.9"


def test_leaf_subclass_is_picked_and_missing_subclass_reported(checks_env, load):
    leaf, none = checks_env.name(), checks_env.name()
    checks_env.write_check(
        leaf,
        """
        from datadog_checks.base import AgentCheck

        class ABase(AgentCheck):
            pass

        class ZLeaf(ABase):
            pass
    """,
    )
    checks_env.write_check(none, "X = 1\n")
    checks_env.write_conf(leaf, "instances: [{}]\n")
    checks_env.write_conf(none, "instances: [{}]\n")
    report = load()
    assert [type(i.check).__name__ for i in report.instances] == ["ZLeaf"]
    assert report.errors[none][1] == (
        f"unable to find a subclass of the base check in module '{none}': cannot find a subclass"
    )


def test_import_error_of_the_check_itself(checks_env, load):
    name = checks_env.name()
    checks_env.write_check(name, "import no_such_dependency_xyz\n")
    checks_env.write_conf(name, "instances: [{}]\n")
    assert load().errors[name][1] == (
        f"unable to import module '{name}': No module named 'no_such_dependency_xyz'"
    )


def test_constructor_retried_with_agent_config(checks_env, load):
    name = checks_env.name()
    checks_env.write_check(
        name,
        """
        from datadog_checks.base import AgentCheck

        class OldCheck(AgentCheck):
            def __init__(self, name, init_config, agentConfig, instances):
                super().__init__(name, init_config, agentConfig, instances)
    """,
    )
    checks_env.write_conf(name, "instances: [{}]\n")
    with capturedLogs() as events:
        report = load()
    check = report.instances[0].check
    assert isinstance(check.agentConfig, dict)
    assert "confd_path" in check.agentConfig
    text = [formatEvent(e) for e in events]
    assert (
        "trying to instantiate the check with the old api, passing agentConfig to the constructor"
        in text
    )
    assert (
        "passing `agentConfig` to the constructor is deprecated, please use the `get_config` "
        f"function from the 'datadog_agent' package ({name})."
    ) in text


def test_constructor_failing_both_ways(checks_env, load):
    name = checks_env.name()
    checks_env.write_check(
        name,
        """
        from datadog_checks.base import AgentCheck

        class BadCheck(AgentCheck):
            def __init__(self, *args, **kwargs):
                raise ValueError("no way")
    """,
    )
    checks_env.write_conf(name, "instances: [{}]\n")
    (error,) = load().errors[name]
    assert error.startswith(
        f"could not invoke '{name}' python check constructor. "
        "New constructor API returned:\nTraceback"
    )
    assert "ValueError: no way\nDeprecated constructor API returned:\nTraceback" in error
    assert error.endswith("ValueError: no way\n")


def test_skip_instance_error_skips_quietly(checks_env, load):
    name = checks_env.name()
    checks_env.write_check(
        name,
        """
        from datadog_checks.base import AgentCheck
        from datadog_checks.base.errors import SkipInstanceError

        class SkipCheck(AgentCheck):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                if self.instance.get("skip"):
                    raise SkipInstanceError("not here")
    """,
    )
    checks_env.write_conf(name, "instances: [{skip: true}, {}]\n")
    report = load()
    assert len(report.instances) == 1
    assert report.errors == {}
    assert report.skipped[name] == [
        "datadog_checks.base.errors.SkipInstanceError: The integration refused to load the check "
        "configuration, it may be deprecated or not supported: not here"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "instances:\n  - a: [1\n",
            "{path}:3: invalid YAML: expected ',' or ']', but got '<stream end>'",
        ),
        ("- 1\n- 2\n", "{path}:1: expected a mapping with 'init_config' and 'instances'"),
        ("init_config: 3\ninstances: [{}]\n", "{path}: 'init_config' is not a dict"),
        (
            "init_config:\ninstances: {}\n",
            "{path}:2: 'instances' must be a non-empty list of mappings",
        ),
        ("init_config:\ninstances:\n  - {}\n  - 7\n", "{path}:4: instance 2 is not a dict"),
        (
            "instances:\n  - min_collection_interval: soon\n",
            "{path}:2: min_collection_interval must be a number of seconds, got 'soon'",
        ),
    ],
)
def test_bad_config_files_name_file_and_line(checks_env, load, text, expected):
    name = checks_env.name()
    checks_env.write_check(name, HELLO)
    path = checks_env.write_conf(name, text)
    good = checks_env.name()
    checks_env.write_check(good, HELLO)
    checks_env.write_conf(good, "instances: [{}]\n")
    report = load()
    assert report.errors == {name: [expected.format(path=path)]}
    assert [i.name for i in report.instances] == [good]
