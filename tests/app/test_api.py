"""The explorer driven through gradio_client: the profile_effects endpoint (a what-if call, an
out-of-support profile, invalid profiles) and the upload check (problems named by column and row)."""

from __future__ import annotations

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from hte.data.simulate import simulate_cohort
from hte.pipeline.profile import ProfileExplorer


@pytest.fixture(scope="module")
def explorer(small_run, hte_home, monkeypatch_module):
    monkeypatch_module.setenv("HTE_HOME", str(hte_home))
    return ProfileExplorer.from_run(small_run)


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _call(client, profile):
    return client.predict(profile, api_name="/profile_effects")


def test_profile_effects_answers_what_the_pipeline_computes(client, explorer):
    profile = explorer.default_profile() | {"age": 70, "extramedullary": True}
    answer = _call(client, profile)
    # the endpoint is a face on the pipeline: same numbers as calling the explorer directly
    assert answer == explorer.effects(profile).to_json()
    for key in ("survival_difference", "rmst_difference", "crs_difference"):
        est = answer[key]
        assert est["lower"] <= est["value"] <= est["upper"], key
    for key in ("survival_cart", "survival_tec", "crs_cart", "crs_tec"):
        assert 0.0 <= answer[key]["lower"] <= answer[key]["value"] <= answer[key]["upper"] <= 1.0
    assert answer["profile"]["age"] == 70 and answer["profile"]["extramedullary"] is True
    assert answer["summary"].startswith("Out of 100 patients like this")


def test_profile_changes_move_the_answer(client, explorer):
    base = explorer.default_profile()
    a = _call(client, base | {"extramedullary": False})
    b = _call(client, base | {"extramedullary": True})
    # each arm's survival is the profile's own, whichever effect model the run chose
    assert a["survival_cart"]["value"] != b["survival_cart"]["value"]
    source = explorer.bundle.sources["survival"]
    if source.constant is None:  # a learner was chosen: its effect answers the profile
        assert a["survival_difference"]["value"] != b["survival_difference"]["value"]
    else:  # the run chose the constant: every profile gets the DR average effect, said so
        assert a["survival_difference"]["value"] == b["survival_difference"]["value"]
        assert a["survival_difference"]["value"] == pytest.approx(source.constant[0])


def test_out_of_range_profile_is_flagged_not_refused(client, explorer):
    age = next(f for f in explorer.fields() if f.name == "age")
    answer = _call(client, explorer.default_profile() | {"age": 109})
    assert age.maximum < 109  # outside the observed range, inside the schema (18-110)
    assert any("Age" in w for w in answer["out_of_range"])
    assert answer["warnings"]


@pytest.mark.parametrize(
    ("profile", "field"),
    [({"age": "old"}, "age"), ({"ecgo": 1}, "ecgo"), ({"age": 150}, "age"), ({"sex": "x"}, "sex")],
)
def test_invalid_profile_error_names_the_field(client, profile, field):
    with pytest.raises(AppError) as info:
        _call(client, profile)
    assert f"field '{field}'" in str(info.value)


def test_upload_with_errors_lists_column_and_rows(client, tmp_path):
    cohort = simulate_cohort(40, seed=3)
    cohort.loc[[1, 3], "ecog"] = 7  # rows 2 and 4 after the header
    cohort.loc[5, "treatment"] = "car-t"  # row 6: an unknown treatment code
    path = tmp_path / "bad.csv"
    cohort.to_csv(path, index=False)
    verdict, problems = client.predict(handle_file(str(path)), api_name="/check_upload")[:2]
    problems = problems.get("value", problems)  # the table comes back as a visibility update
    table = {row[0]: row for row in problems["data"]}
    assert "problem" in verdict
    assert "ecog must be 0-4" in table["ecog"][1] and table["ecog"][2] == "rows 2, 4"
    assert table["treatment"][2] == "row 6"


def test_valid_upload_shows_the_cohort_summary(client, tmp_path):
    path = tmp_path / "good.csv"
    simulate_cohort(40, seed=3).to_csv(path, index=False)
    verdict = client.predict(handle_file(str(path)), api_name="/check_upload")[0]
    assert verdict.startswith("**Valid cohort:** 40 patients")


def test_the_json_route_gives_the_same_answer_and_names_bad_input(app_url, client, explorer):
    import httpx

    from hte.app.launch import JSON_ROUTE

    profile = explorer.default_profile() | {"age": 66, "extramedullary": False}
    with httpx.Client(base_url=app_url, timeout=60) as http:
        answer = http.post(JSON_ROUTE, json=profile)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == _call(client, profile)  # one answer, two doors
        too_old = http.post(JSON_ROUTE, json=profile | {"age": 300})
        assert too_old.status_code == 422 and "field 'age'" in too_old.json()["error"]
        not_json = http.post(JSON_ROUTE, content=b"age=66")
        assert not_json.status_code == 422 and "not JSON" in not_json.json()["error"]
        a_list = http.post(JSON_ROUTE, json=[profile])
        assert a_list.status_code == 422 and "JSON object" in a_list.json()["error"]
        assert http.get(JSON_ROUTE).status_code == 405  # POST only
        huge = http.post(JSON_ROUTE, content=b"{" + b" " * 70_000 + b"}")
        assert huge.status_code == 413 and "over 65536 bytes" in huge.json()["error"]
