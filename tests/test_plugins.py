"""The plugin host: loading, start-up checks, and the CLI's view of it."""

from __future__ import annotations

import pytest

from core.engine import Engine
from core.plugins import PluginError
from core.worker import InlineDispatcher
from tests.conftest import BASE_REGISTRY, TEST_PLUGINS


def test_an_unknown_hook_stops_start_up_naming_the_plugin(settings_factory):
    settings = settings_factory(plugin_modules=TEST_PLUGINS + ",typo=tests.support.bad_typo")
    with pytest.raises(PluginError, match=r"plugin 'typo'.*enrich_observaton"):
        Engine.start(settings, dispatcher=InlineDispatcher())


def test_a_plugin_named_in_the_registry_but_not_installed_stops_start_up(settings_factory):
    text = BASE_REGISTRY.replace("services:\n  flaky:", "services:\n  ghost:\n    summary: not here\n  flaky:", 1)
    settings = settings_factory(text)
    with pytest.raises(PluginError, match=r"plugin 'ghost': registry.yaml offers it .* not installed"):
        Engine.start(settings, dispatcher=InlineDispatcher())


def test_a_plugin_that_fails_to_import_names_itself(settings_factory):
    settings = settings_factory(plugin_modules=TEST_PLUGINS + ",broken=tests.support.does_not_exist")
    with pytest.raises(PluginError, match=r"plugin 'broken': cannot import 'tests.support.does_not_exist'"):
        Engine.start(settings, dispatcher=InlineDispatcher())


def test_a_kind_registered_twice_stops_start_up(settings_factory):
    settings = settings_factory(plugin_modules=TEST_PLUGINS + ",dup=tests.support.duplicate_kind")
    with pytest.raises(PluginError, match=r"plugin 'dup': observation type 'generic' is already registered"):
        Engine.start(settings, dispatcher=InlineDispatcher())


def test_plugins_are_listed_with_hooks_and_projects(engine):
    host = engine.host
    assert host.hooks_of("recorder") == [
        "enrich_observation", "grade_observation", "on_status_change", "quality_check", "validate_observation"
    ]
    assert host.registry.projects_enabling("recorder") == ["alpha"]
    assert host.enriching_services(engine.registry.project("alpha")) == ["flaky", "recorder"] or \
        sorted(host.enriching_services(engine.registry.project("alpha"))) == ["flaky", "recorder"]
    assert host.enriching_services(engine.registry.project("beta")) == []
