from __future__ import annotations

import pytest
from support import entry_point, plugin_module

from host.discovery import Discovery, DiscoveryError, PluginState, new_plugin_manager


def discover(*eps, **kw):
    pm = new_plugin_manager()
    return pm, Discovery(pm, entry_points=lambda: list(eps), **kw).run()


def test_loaded_plugin_is_registered_with_its_hooks_and_distribution():
    mod = plugin_module(
        "good", security_agent_run=lambda agent: None, security_agent_status=lambda agent: None
    )
    pm, records = discover(entry_point("good", mod, "good-dist", "2.0"))
    (record,) = records
    assert record.state is PluginState.LOADED
    assert (record.name, record.distribution, record.version) == ("good", "good-dist", "2.0")
    assert record.hooks == ["security_agent_run", "security_agent_status"]
    assert pm.get_plugin("good") is mod


def test_import_failure_is_reported_and_the_others_still_load():
    good = plugin_module("good", security_agent_run=lambda agent: None)
    pm, records = discover(
        entry_point("broken", ImportError("No module named 'nope'"), "broken-dist", "0.1"),
        entry_point("good", good),
    )
    broken, loaded = records
    assert broken.state is PluginState.FAILED
    assert broken.error == "import failed: ImportError: No module named 'nope'"
    assert broken.distribution == "broken-dist"
    assert "ImportError" in broken.traceback
    assert loaded.state is PluginState.LOADED
    assert pm.get_plugin("good") is good


def test_sys_exit_at_import_does_not_kill_discovery():
    _, (record,) = discover(entry_point("exits", SystemExit(3)))
    assert record.state is PluginState.FAILED
    assert record.error == "import failed: SystemExit: 3"


def test_unknown_hook_fails_only_that_plugin():
    typo = plugin_module("typo", security_agent_rnu=lambda agent: None)
    good = plugin_module("good", security_agent_run=lambda agent: None)
    pm, (good_rec, typo_rec) = discover(entry_point("typo", typo), entry_point("good", good))
    assert typo_rec.state is PluginState.FAILED
    assert typo_rec.error == "implements unknown hook(s): security_agent_rnu"
    assert pm.get_plugin("typo") is None
    assert good_rec.state is PluginState.LOADED


def test_registration_failure_from_wrong_hook_arguments():
    bad = plugin_module("bad", security_agent_run=lambda agent, bogus: None)
    _, (record,) = discover(entry_point("bad", bad))
    assert record.state is PluginState.FAILED
    assert record.error.startswith("registration failed: PluginValidationError: ")
    assert "bogus" in record.error


def test_disabled_by_deny_list_and_allow_list():
    a = plugin_module("a", security_agent_run=lambda agent: None)
    b = plugin_module("b", security_agent_run=lambda agent: None)
    _, records = discover(entry_point("a", a), entry_point("b", b), deny=["a"])
    assert [r.state for r in records] == [PluginState.DISABLED, PluginState.LOADED]
    _, records = discover(entry_point("a", a), entry_point("b", b), allow=["a"])
    assert [r.state for r in records] == [PluginState.LOADED, PluginState.DISABLED]


def test_unknown_name_in_allow_or_deny_list_is_an_error():
    a = plugin_module("a", security_agent_run=lambda agent: None)
    with pytest.raises(DiscoveryError) as exc:
        discover(entry_point("a", a), allow=["a", "nope"])
    assert str(exc.value) == "plugins.enabled: unknown plugin(s) nope; installed: a"
    with pytest.raises(DiscoveryError) as exc:
        discover(entry_point("a", a), deny=["zz"])
    assert str(exc.value) == "plugins.disabled: unknown plugin(s) zz; installed: a"


def test_strict_mode_turns_a_failure_into_an_error():
    with pytest.raises(DiscoveryError) as exc:
        discover(entry_point("broken", RuntimeError("boom"), "broken-dist"), strict=True)
    assert str(exc.value) == (
        "strict plugin mode: 1 plugin(s) failed: "
        "broken (broken-dist): import failed: RuntimeError: boom"
    )


def test_duplicate_name_from_another_distribution_fails_the_second():
    a1 = plugin_module("a1", security_agent_run=lambda agent: None)
    a2 = plugin_module("a2", security_agent_run=lambda agent: None)
    pm, (first, second) = discover(entry_point("a", a1, "one"), entry_point("a", a2, "two"))
    assert first.state is PluginState.LOADED
    assert second.state is PluginState.FAILED
    assert second.error == "name already taken by one"
    assert pm.get_plugin("a") is a1


def test_installed_entry_points_are_read_from_package_metadata():
    from host.discovery import installed_entry_points

    # Whatever is installed, every entry found must be of our group and loadable by name.
    for ep in installed_entry_points():
        assert ep.group == "security_agent"
