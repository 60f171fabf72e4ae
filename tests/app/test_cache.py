"""The app's answer caches: keys that tell requests apart, bounded size, and one computation of
a profile's effects per field change (the headline and the figures share it) that equals the
explorer's own answer."""

from __future__ import annotations

import pytest

from hte.app.cache import AnswerCache, key_of


def test_keys_tell_types_apart_and_refuse_what_cannot_be_hashed():
    assert key_of("run", {"age": 60, "ecog": 1}) == key_of("run", {"ecog": 1, "age": 60})
    assert key_of("run", {"age": 60}) != key_of("run", {"age": 60.0})
    assert key_of("run", {"prior_asct": True}) != key_of("run", {"prior_asct": 1})
    assert key_of("run", [1, 2], "age") != key_of("run", [1, 2], "crp")
    assert key_of("run", {"age": [60]}) is None  # a list value from a client
    assert key_of("run", {1: {"a": 1}, "1": 2}) is None  # nested, unhashable


def test_the_cache_keeps_the_most_recently_used_entries():
    cache = AnswerCache(2)
    cache.put(("a",), 1)
    cache.put(("b",), 2)
    assert cache.get(("a",)) == 1  # "a" is now the most recent
    cache.put(("c",), 3)
    assert cache.get(("b",)) is None and cache.get(("a",)) == 1 and cache.get(("c",)) == 3
    assert len(cache) == 2
    cache.put(None, 4)  # an unhashable request is not kept
    assert cache.get(None) is None and len(cache) == 2


@pytest.fixture
def context(small_run, hte_home, monkeypatch):
    from hte.app import callbacks as cb
    from hte.app.state import AppContext

    monkeypatch.setenv("HTE_HOME", str(hte_home))  # the run's signing key
    for cache in (cb._EFFECTS, cb._HEADLINES, cb._FIGURES):
        cache.clear()
    return AppContext.create(small_run)


def test_one_field_change_computes_the_effects_once(context, small_run, monkeypatch):
    from hte.app import callbacks as cb
    from hte.app import whatif as wi

    explorer = context.explorer()
    calls = []
    real = explorer.effects
    monkeypatch.setattr(explorer, "effects", lambda p: calls.append(p) or real(p))
    names = [f.name for f in explorer.fields()]
    values = list(cb.default_values(context, str(small_run)))
    values[names.index("age")] = 71
    head = cb.whatif_headline(context, str(small_run), names, values)
    figures = cb.whatif_figures(context, str(small_run), names, values, "age", "survival")
    assert len(calls) == 1
    assert "hte-cards" in head[len(names) + wi.HEADLINE.index("cards")]
    assert "<svg" in figures[wi.FIGURES.index("curves")]
    # the page's first render, all eight outputs, agrees with the two events
    everything = cb.whatif_outputs(context, str(small_run), names, values, "age", "survival")
    assert everything[len(names) + wi.OUTPUTS.index("cards")] == head[len(names) + 1]
    assert everything[len(names) + wi.OUTPUTS.index("curves")] == figures[0]
    assert len(calls) == 1


def test_a_refused_field_clears_the_figures_too(context, small_run):
    from hte.app import callbacks as cb

    names = [f.name for f in context.explorer().fields()]
    values = list(cb.default_values(context, str(small_run)))
    values[names.index("age")] = 130
    head = cb.whatif_headline(context, str(small_run), names, values)
    assert "Age: 130 is outside" in head[names.index("age")]
    assert "Results cleared" in head[len(names)] and head[len(names) + 1] == ""
    figures = cb.whatif_figures(context, str(small_run), names, values, "age", "survival")
    assert figures == [""] * 5


def test_the_api_answers_a_profile_again_from_the_cache_unchanged(context):
    from hte.app import callbacks as cb

    explorer = context.explorer()
    api = cb.api_profile_effects(context)
    profile = {"age": 64, "ecog": 1}
    first = api(profile)
    assert first == explorer.effects(profile).to_json()
    assert api(dict(reversed(list(profile.items())))) is first  # same profile: no new work
    assert api({"age": 65, "ecog": 1}) != first
    with pytest.raises(Exception, match="invalid profile: field 'age'"):
        api({"age": "old"})
