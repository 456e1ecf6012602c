"""How the engine calls hooks: through pluggy, per project, one order, firstresult and wrappers
as pluggy defines them, opt-in by kind, the engine passed in, and a trace of every call."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from core import lifecycle
from core.db.models import Enrichment
from core.db.session import transaction
from core.plugins import PluginError, build_host
from core.registry import load_registry
from core.views import load_observation, observation_dict
from tests.conftest import TEST_PLUGINS, draft
from tests.support import recorder, wrapping

PLUGINS = TEST_PLUGINS + ",birdsong=tests.support.birdsong,wrapping=tests.support.wrapping"
REGISTRY = """
services:
  recorder: {summary: records hook calls}
  birdsong: {summary: bird songs only}
  wrapping: {summary: wraps quality checks}
  flaky: {summary: fails, config: {timeout_s: 5}}
  sleepy: {summary: sleeps}
projects:
  - slug: songs
    name: Songs
    services: {recorder: {}, birdsong: {}, wrapping: {}}
  - slug: plain
    name: Plain
    services: {recorder: {}}
"""


@pytest.fixture
def songs(make_engine):
    return make_engine(REGISTRY, plugin_modules=PLUGINS)


def shown(engine, obs_id):
    with transaction(engine.readers) as session:
        return observation_dict(load_observation(session, obs_id))


def enrichment_plugins(engine, obs_id):
    with transaction(engine.readers) as session:
        return sorted(session.scalars(select(Enrichment.plugin).where(Enrichment.observation_id == obs_id)))


def test_a_kinded_plugin_gets_no_row_no_task_and_no_check_for_other_kinds(songs):
    generic = lifecycle.submit(songs, "songs", draft()).observation_id
    assert enrichment_plugins(songs, generic) == ["recorder"]
    assert "song_checked" not in [f["code"] for f in shown(songs, generic)["flags"]]

    song = lifecycle.submit(songs, "songs", draft(kind="bird_song", fields={"species": "wren"})).observation_id
    assert enrichment_plugins(songs, song) == ["birdsong", "recorder"]
    obs = shown(songs, song)
    assert obs["enrichments"]["birdsong"]["result"] == {"kind": "bird_song", "projects": ["plain", "songs"]}, \
        "the hook was given the engine"
    assert "song_checked" in [f["code"] for f in obs["flags"]]


def test_a_batch_of_mixed_kinds_gets_each_kind_its_own_enrichments(songs):
    results = lifecycle.submit_many(songs, "songs", [
        (draft(client_id="g1"), []), (draft(kind="bird_song", client_id="s1"), []), (draft(client_id="g2"), [])])
    ids = [r.observation_id for r in results]
    assert [enrichment_plugins(songs, i) for i in ids] == [["recorder"], ["birdsong", "recorder"], ["recorder"]]
    assert all(e["status"] == "done" for i in ids for e in shown(songs, i)["enrichments"].values())


def test_registry_kinds_override_what_the_plugin_declares(make_engine):
    engine = make_engine(REGISTRY.replace("birdsong: {summary: bird songs only}",
                                          "birdsong: {summary: bird songs only, kinds: [bird_song, generic]}"),
                         plugin_modules=PLUGINS)
    obs_id = lifecycle.submit(engine, "songs", draft()).observation_id
    assert enrichment_plugins(engine, obs_id) == ["birdsong", "recorder"]


def test_grading_is_pluggys_firstresult_and_the_engines_rule_answers_last(songs):
    certain = lifecycle.submit(songs, "songs", draft(kind="bird_song", fields={"species": "certain"})).observation_id
    unsure = lifecycle.submit(songs, "songs", draft(kind="bird_song", fields={"species": "wren"})).observation_id
    assert shown(songs, certain)["grade"] == "research", "birdsong's answer wins"
    assert shown(songs, unsure)["grade"] == "needs_id", "birdsong passed: the engine's own rule decided"


def test_a_wrapper_wraps_each_plugins_check_and_only_where_it_is_enabled(songs):
    wrapping.WRAPPED.clear()
    obs_id = lifecycle.submit(songs, "songs", draft(kind="bird_song")).observation_id
    wrapped = sorted(wrapping.WRAPPED)
    assert ["song_checked"] in wrapped and ["recorded"] in wrapped, wrapped
    codes = [f["code"] for f in shown(songs, obs_id)["flags"]]
    assert codes.count("wrapped") == len(wrapped), "what the wrapper returned is what the engine stored"
    wrapping.WRAPPED.clear()
    lifecycle.submit(songs, "plain", draft())
    assert wrapping.WRAPPED == [], "not enabled in project plain: its wrapper never runs there"


def test_hooks_reach_only_the_plugins_a_project_enables(songs):
    recorder.CALLS.clear()
    lifecycle.submit(songs, "plain", draft())
    assert {project for _, project in recorder.CALLS} == {"plain"}
    plain = songs.registry.project("plain")
    assert songs.host.plugins_of("quality_check", plain) == ["recorder", "core.builtin.checks"]
    assert "birdsong" not in songs.host.plugins_of("enrich_observation", plain)


def test_one_order_everywhere_pluggys(songs):
    project = songs.registry.project("songs")
    impls = [i.plugin_name for i in reversed(songs.host.pm.hook.quality_check.get_hookimpls()) if not i.wrapper]
    enabled = {"recorder", "birdsong", "core.builtin.checks"}
    assert songs.host.plugins_of("quality_check", project) == [p for p in impls if p in enabled]
    recorder.CALLS.clear()
    obs_id = lifecycle.submit(songs, "songs", draft(kind="bird_song")).observation_id
    stored = [f["plugin"] for f in shown(songs, obs_id)["flags"] if f["code"] != "wrapped"]
    assert stored == [p for p in songs.host.plugins_of("quality_check", project) if p in stored], \
        "flags are stored in the call order"


def test_the_trace_logs_every_hook_call_with_plugins_and_time(make_engine, caplog):
    caplog.set_level(logging.INFO, logger="observatory.plugins.trace")
    engine = make_engine(REGISTRY, plugin_modules=PLUGINS, trace_plugins=True)
    lifecycle.submit(engine, "songs", draft(kind="bird_song", fields={"species": "certain"}))
    lines = [r.getMessage() for r in caplog.records if r.name == "observatory.plugins.trace"]
    assert any(line.startswith("hook enrich_observation [birdsong] ") and " ms returned [{'kind': 'bird_song'" in line
               for line in lines), lines
    grading = next(line for line in lines if line.startswith("hook grade_observation ["))
    assert "birdsong" in grading and "core.builtin.grading" in grading and "returned 'research'" in grading


def test_without_the_switch_nothing_is_traced(songs, caplog):
    caplog.set_level(logging.INFO, logger="observatory.plugins.trace")
    lifecycle.submit(songs, "songs", draft())
    assert not [r for r in caplog.records if r.name == "observatory.plugins.trace"]


def test_a_plugin_named_like_the_engines_own_is_not_on_everywhere(make_engine):
    engine = make_engine("services: {}\nprojects: [{slug: plain, name: Plain}]\n",
                         plugin_modules="core.recorder=tests.support.recorder")
    assert not engine.host.is_default("core.recorder")
    assert "core.recorder" not in engine.host.plugins_of("enrich_observation", engine.registry.project("plain"))


def test_an_installed_plugin_listed_in_plugin_modules_too_is_loaded_once(tmp_path):
    registry = tmp_path / "registry.yaml"
    registry.write_text("services: {}\nprojects: []\n")
    host = build_host(load_registry(registry), "odour=plugins.odour.plugin")
    assert host.info["odour"].module == "plugins.odour.plugin"
    with pytest.raises(PluginError, match="plugin 'odour': two plugins have this name"):
        build_host(load_registry(registry), "odour=tests.support.recorder")


def test_load_plugins_chooses_the_installed_plugins_to_load(tmp_path):
    registry = tmp_path / "registry.yaml"
    registry.write_text("services: {}\nprojects: []\n")
    every = build_host(load_registry(registry))
    assert {"odour", "species_id"} <= set(every.info)
    only = build_host(load_registry(registry), load="odour")
    assert "odour" in only.info and "species_id" not in only.info
    none = build_host(load_registry(registry), "recorder=tests.support.recorder", load="")
    assert sorted(n for n in none.info if not none.is_default(n)) == ["recorder"], "plugin_modules come on top"


def test_on_assessed_tells_the_stored_grade_flags_and_results(songs):
    from tests.support import birdsong

    birdsong.ASSESSED.clear()
    obs_id = lifecycle.submit(songs, "songs", draft(kind="bird_song", fields={"species": "certain"})).observation_id
    ((seen_id, grade, codes, enrichments),) = birdsong.ASSESSED
    assert (seen_id, grade) == (obs_id, "research") and "song_checked" in codes
    assert enrichments["birdsong"]["kind"] == "bird_song", "every enrichment had ended"
    assert shown(songs, obs_id)["grade"] == grade
    birdsong.ASSESSED.clear()
    lifecycle.submit(songs, "plain", draft())
    assert birdsong.ASSESSED == [], "not enabled in project plain"


def test_on_comment_is_called_after_the_comment_is_stored(songs):
    from core import comments
    from core.tokens import authenticate, create_token
    from tests.support import birdsong

    principal = authenticate(songs, create_token(songs, "contributor", "songs", "commenter").token)
    obs_id = lifecycle.submit(songs, "songs", draft(), contributor_id=principal.account_id).observation_id
    birdsong.COMMENTS.clear()
    comments.post(songs, principal, obs_id, "a wren, I think")
    assert birdsong.COMMENTS == [(obs_id, obs_id, "a wren, I think")]


def test_a_register_hook_that_raises_names_its_plugin(tmp_path):
    registry = tmp_path / "registry.yaml"
    registry.write_text("services: {}\nprojects: []\n")
    with pytest.raises(PluginError, match=r"plugin 'broken': register_observation_types failed: ZeroDivisionError"):
        build_host(load_registry(registry), "broken=tests.support.broken_register")


def test_a_plugin_that_cannot_erase_stops_the_erasure_before_anything_is_erased(make_engine):
    from core import gdpr
    from core.accounts import create_account
    from core.db.models import Account

    engine = make_engine("services: {}\nprojects: [{slug: plain, name: Plain}]\n",
                         plugin_modules="broken=tests.support.broken_eraser")
    account_id = create_account(engine, "Ana", email="ana@example.org").id
    with pytest.raises(gdpr.PluginErasureFailed, match="plugin 'broken' could not erase account"):
        gdpr.erase(engine, account_id)
    with transaction(engine.readers) as session:
        assert session.get(Account, account_id) is not None, "nothing of the engine's was erased"
