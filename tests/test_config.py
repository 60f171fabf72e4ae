"""Experiment configs: shipped configs load, bad configs give one clear error naming key and line,
overrides, estimator parameter checks, and pre-flight checks against the data."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hte.array_checks import check_survival_outcome
from hte.config import (
    ESTIMATOR_KINDS,
    ConfigError,
    ExperimentConfig,
    FileData,
    check_config_against_data,
    estimator_class,
    load_config,
    main,
    preflight,
    resolved_config_dict,
)
from hte.data.columns import DAYS_PER_MONTH, OS_MONTHS
from hte.data.simulate import simulate_cohort

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SHIPPED = [
    "default.yaml",
    "immortal_time.yaml",
    "null_effect.yaml",
    "your_data.yaml",
    "seed_study.yaml",
]


def line_of(text: str, marker: str) -> int:
    """1-based number of the first line containing ``marker`` (so tests never hard-code lines)."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if marker in line)


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path, overrides=()) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return str(info.value)


MINIMAL = """\
name: t
data:
  source: synthetic
  n: 200
estimators:
  - name: cox
    kind: cox_interaction
"""


@pytest.fixture(scope="module")
def user_export(tmp_path_factory) -> Path:
    """A small cohort saved as a user's export would be: own column names, 1/0 codes, days."""
    df = simulate_cohort(150, seed=3)
    df = df[[c for c in df.columns if not c.startswith("true_")]]
    df = df.rename(columns={"patient_id": "PID", "treatment": "arm", "os_months": "os_days"})
    df["arm"] = df["arm"].map({"cart": 1, "tec": 0})
    df["os_days"] = df["os_days"] * DAYS_PER_MONTH
    path = tmp_path_factory.mktemp("export") / "cohort.csv"
    df.to_csv(path, index=False)
    return path


def file_config(csv: Path, extra: str = "", renames: str = "") -> str:
    return f"""\
name: real
data:
  source: file
  path: {csv}
  columns:
    columns:
      PID: patient_id
      arm: treatment
      os_days: os_months
{renames}    treatment_codes: {{1: cart, 0: tec}}
    time_unit: days
estimators:
  - kind: cox_interaction
{extra}"""


# --------------------------------------------------------------------------------------------------
# Shipped configs


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_loads_and_round_trips(name):
    config = load_config(CONFIGS / name)
    resolved = resolved_config_dict(config)
    json.dumps(resolved)  # JSON-ready for run folders
    again = ExperimentConfig.model_validate(json.loads(json.dumps(resolved)))
    assert again.model_dump() == config.model_dump()


def test_default_config_is_the_synthetic_decision_time_run_with_every_estimator():
    config = load_config(CONFIGS / "default.yaml")
    assert config.data.source == "synthetic" and config.data.scenario == "default"
    assert [a.mode for a in config.time_zero] == ["decision"]
    assert config.outcomes.os.targets() == [("survival", 12.0), ("rmst", 24.0)]
    assert config.outcomes.crs.outcomes(has_grade=True) == ["crs", "crs_g3"]
    assert {e.kind for e in config.estimators} == set(ESTIMATOR_KINDS)
    assert config.data.seed == config.seed  # null data seed resolved to the global seed


def test_immortal_time_config_analyses_one_cohort_at_two_time_zeros():
    config = load_config(CONFIGS / "immortal_time.yaml")
    assert [a.mode for a in config.time_zero] == ["decision", "infusion"]
    assert config.data == load_config(CONFIGS / "default.yaml").data


def test_null_effect_config_uses_the_null_scenario():
    assert load_config(CONFIGS / "null_effect.yaml").data.scenario == "null_effect"


@pytest.mark.parametrize("name", ["default.yaml", "immortal_time.yaml", "null_effect.yaml"])
def test_shipped_synthetic_configs_pass_preflight(name):
    facts = preflight(load_config(CONFIGS / name))
    assert OS_MONTHS in facts.columns and facts.max_follow_up_months > 24


def test_seed_study_config_mimics_the_802mo_design():
    config = load_config(CONFIGS / "seed_study.yaml")
    assert config.data.scenario == "short_follow_up" and config.data.n == 850
    assert [a.mode for a in config.time_zero] == ["decision", "infusion"]
    assert config.outcomes.os.targets() == [("survival", 12.0)]
    assert config.evaluation.matching is True
    facts = preflight(config)
    assert 12 < facts.max_follow_up_months <= 18


def test_your_data_template_fails_preflight_on_its_placeholder_file():
    """The template points at a file the user must supply: the pre-flight says so, at its line."""
    path = CONFIGS / "your_data.yaml"
    config = load_config(path)
    assert isinstance(config.data, FileData) and config.evaluation.truth_metrics is False
    with pytest.raises(ConfigError) as info:
        preflight(config)
    line = line_of(path.read_text(), "path: data/my_cohort.csv")
    assert str(info.value) == f"{path} line {line}: data.path: no such file: data/my_cohort.csv"


# --------------------------------------------------------------------------------------------------
# The acceptance list of bad configs: one clear message each, naming key and line


def test_unknown_key_names_key_line_and_allowed_keys(tmp_path):
    text = MINIMAL.replace("  n: 200\n", "  n: 200\n  sample_size: 10\n")
    path = write(tmp_path, text)
    msg = config_error(path)
    assert msg == (
        f"{path} line {line_of(text, 'sample_size')}: data.sample_size: unknown key "
        "(allowed: source, scenario, n, seed)"
    )


def test_misspelt_key_gets_a_suggestion(tmp_path):
    text = MINIMAL + "evaluation:\n  alpah: 0.1\n"
    msg = config_error(write(tmp_path, text))
    assert (
        f"line {line_of(text, 'alpah')}: evaluation.alpah: unknown key; did you mean 'alpha'?"
        in msg
    )


def test_wrong_type_names_key_line_and_value(tmp_path):
    text = MINIMAL.replace("n: 200", "n: lots")
    path = write(tmp_path, text)
    msg = config_error(path)
    assert "\n" not in msg
    assert msg.startswith(f"{path} line {line_of(text, 'n: lots')}: data.n: ")
    assert "integer" in msg and "'lots'" in msg


def test_missing_data_file_fails_preflight(tmp_path):
    text = file_config(tmp_path / "nowhere.csv")
    path = write(tmp_path, text)
    config = load_config(path)  # the file is checked before fitting, not when parsing
    with pytest.raises(ConfigError) as info:
        preflight(config)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path} line {line_of(text, 'path:')}: data.path: no such file")


def test_column_map_naming_a_missing_column_fails_preflight(tmp_path, user_export):
    text = file_config(user_export, renames="      hb_g_dl: hemoglobin\n")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        preflight(load_config(path))
    assert str(info.value) == (
        f"{path} line {line_of(text, 'hb_g_dl')}: data.columns.columns.hb_g_dl: "
        "column 'hb_g_dl' of the column map (-> hemoglobin) is not in the file"
    )


def test_horizon_beyond_follow_up_fails_preflight(tmp_path, user_export):
    text = file_config(user_export, extra="outcomes:\n  os:\n    rmst_horizon: 48\n")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        preflight(load_config(path))
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(
        f"{path} line {line_of(text, 'rmst_horizon')}: outcomes.os.rmst_horizon: horizon 48 months "
        "is beyond the longest follow-up"
    )


def test_valid_file_config_passes_preflight_with_the_converted_cohort(tmp_path, user_export):
    facts = preflight(load_config(write(tmp_path, file_config(user_export))))
    assert facts.cohort is not None and len(facts.cohort) == 150  # nobody dropped
    # follow-up converted from days: the synthetic data cut is 36 months
    assert 24 < facts.max_follow_up_months <= 36


def test_missing_column_map_file_is_named(tmp_path):
    text = MINIMAL.replace(
        "data:\n  source: synthetic\n  n: 200\n",
        "data:\n  source: file\n  path: x.csv\n  columns: maps/none.yaml\n",
    )
    path = write(tmp_path, text)
    msg = config_error(path)
    assert msg.startswith(f"{path} line {line_of(text, 'maps/none.yaml')}: data.columns: ")
    assert "cannot read column map maps/none.yaml" in msg


def test_several_problems_are_one_error_with_a_line_each(tmp_path):
    text = MINIMAL.replace("n: 200", "n: 10") + "seeds:\n  global: -1\n"
    msg = config_error(write(tmp_path, text))
    assert len(msg.splitlines()) == 2
    assert "data.n" in msg and "seeds.global" in msg


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: [1\n", "not valid YAML"),
        ("- a\n- b\n", "must be a mapping of sections"),
        (MINIMAL + "name: again\n", "name: key given twice (also on line 1)"),
        ("name: t\n", "estimators: required key is missing"),
        (MINIMAL.replace("name: t", "name: my run/1"), "name: 'my run/1' cannot name a folder"),
        (
            MINIMAL.replace("source: synthetic", "source: csv"),
            "source must be synthetic, file or omop",
        ),
        (MINIMAL.replace("n: 200", "scenario: nope"), "unknown scenario 'nope'"),
        (MINIMAL.replace("kind: cox_interaction", "kind: magic"), "estimators[0].kind"),
    ],
)
def test_malformed_configs_are_named(tmp_path, text, expected):
    assert expected in config_error(write(tmp_path, text))


# --------------------------------------------------------------------------------------------------
# Sections


def test_time_zero_landmark_needs_days_and_labels_must_be_unique(tmp_path):
    base = MINIMAL + "time_zero:\n  - decision\n"
    cfg = load_config(write(tmp_path, base + "  - {mode: landmark, landmark_days: 60}\n"))
    assert [a.label for a in cfg.time_zero] == ["decision", "landmark_60d"]
    text = base + "  - mode: landmark\n"
    msg = config_error(write(tmp_path, text))
    assert f"line {line_of(text, 'mode: landmark')}: time_zero[1]: mode landmark needs" in msg
    msg = config_error(write(tmp_path, base + "  - decision\n"))
    assert "time-zero label decision appears more than once" in msg


def test_estimator_for_a_disabled_outcome_is_an_error(tmp_path):
    text = MINIMAL + "outcomes:\n  os:\n    enabled: false\n"
    msg = config_error(write(tmp_path, text))
    assert f"line {line_of(text, '- name: cox')}: estimators[0]: cox estimates OS effects" in msg


def test_seeds_global_reaches_the_synthetic_draw_unless_it_has_its_own(tmp_path):
    path = write(tmp_path, MINIMAL + "seeds:\n  global: 11\n")
    assert load_config(path).data.seed == 11
    assert load_config(path, ["data.seed=5"]).data.seed == 5


# --------------------------------------------------------------------------------------------------
# Overrides


def test_overrides_set_values_of_every_type(tmp_path):
    path = write(tmp_path, MINIMAL)
    config = load_config(
        path,
        [
            "data.n=300",
            "data.scenario=heavy_censoring",
            "outcomes.os.survival_horizon=null",
            "outcomes.crs.grade3=true",
            "evaluation.alpha=0.1",  # the file has no evaluation section: created
            "estimators.0.params.penalizer=0.5",
            "estimators.cox.name=cox_ph",  # a list entry by name
            "time_zero=[decision, {mode: landmark, landmark_days: 30}]",
        ],
    )
    assert (config.data.n, config.data.scenario) == (300, "heavy_censoring")
    assert config.outcomes.os.targets() == [("rmst", 24.0)]
    assert config.outcomes.crs.grade3 is True and config.evaluation.alpha == 0.1
    assert config.estimators[0].params == {"penalizer": 0.5}
    assert config.estimators[0].name == "cox_ph"
    assert [a.mode for a in config.time_zero] == ["decision", "landmark"]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("data.size=3", "--set data.size=3: data.size: unknown key"),
        ("colour.red=1", "--set colour.red=1: colour: unknown key"),
        ("data.n=abc", "--set data.n=abc: data.n: Input should be a valid integer"),
        ("estimators.3.kind=x", "--set estimators.3.kind=x: estimators has 1 entries; no entry 3"),
        ("estimators.csf.kind=x", "estimators has no entry named 'csf'"),
        ("data.n.x=1", "--set data.n.x=1: data.n is a value (200), not a section with keys"),
        ("data.n", "--set data.n: expected key.sub=value"),
        ("=3", "expected key.sub=value"),
        ("data.n=[1", "is not valid YAML"),
    ],
)
def test_bad_overrides_fail_naming_the_override(tmp_path, override, expected):
    msg = config_error(write(tmp_path, MINIMAL), [override])
    assert expected in msg and "\n" not in msg


# --------------------------------------------------------------------------------------------------
# Estimator parameters


@pytest.mark.parametrize("kind", sorted(ESTIMATOR_KINDS))
def test_every_kind_builds_its_class_with_params_and_managed_arguments(kind):
    cls = estimator_class(kind)
    spec_params = {"n_jobs": 1} if "n_jobs" in inspect.signature(cls).parameters else {}
    config = ExperimentConfig.model_validate(
        {"name": "k", "estimators": [{"kind": kind, "params": spec_params}]}
    )
    est = config.estimators[0].build(
        target="survival", horizon=12.0, crs_outcome="crs_g3", random_state=7
    )
    assert type(est) is cls
    got = est.get_params()
    for key, value in {**spec_params, "target": "survival", "horizon": 12.0}.items():
        if key in got:
            assert got[key] == value
    if "outcome" in got:
        assert got["outcome"] == "crs_g3"
    if "random_state" in got:
        assert got["random_state"] == 7


def test_unknown_estimator_parameter_names_estimator_parameter_and_line(tmp_path):
    text = MINIMAL + (
        "  - name: csf\n    kind: causal_survival_forest\n    params:\n      n_trees: 100\n"
    )
    path = write(tmp_path, text)
    msg = config_error(path)
    assert msg.startswith(
        f"{path} line {line_of(text, 'n_trees')}: estimators[1].params.n_trees: "
        "unknown parameter for causal_survival_forest (parameters: n_estimators,"
    )


def test_parameter_set_by_another_section_is_refused(tmp_path):
    text = MINIMAL + "    params: {horizon: 6}\n"
    msg = config_error(write(tmp_path, text))
    assert "estimators[0].params.horizon: horizon is set by outcomes.os" in msg
    msg = config_error(write(tmp_path, MINIMAL), ["estimators.0.params.random_state=1"])
    assert "random_state is set by seeds.global, not in params" in msg


def test_estimator_parameter_of_the_wrong_type_is_refused(tmp_path):
    text = MINIMAL + "  - kind: dr_learner\n    params: {n_estimators: many}\n"
    msg = config_error(write(tmp_path, text))
    assert "estimators[1].params.n_estimators: dr_learner parameter n_estimators must be int" in msg
    # float and None where the class allows them; a fraction where it wants int is refused
    path = write(tmp_path, MINIMAL + "  - kind: t_learner\n    params: {time_resolution: 0.5}\n")
    assert load_config(path).estimators[1].params == {"time_resolution": 0.5}
    assert "must be int" in config_error(path, ["estimators.0.params.n_bootstrap=1.5"])


# --------------------------------------------------------------------------------------------------
# Pre-flight against the data


def _config(**sections) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {"name": "c", "estimators": [{"kind": "cox_interaction"}], **sections}
    )


ALL_COLUMNS = ["patient_id", "treatment", "os_months", "death", "crs", "crs_grade", "age"]


def test_preflight_horizon_rule_agrees_with_the_estimators_check():
    """The config check must refuse exactly the horizons the estimators would refuse at fit time
    (horizon > longest follow-up), so a config that passes never fails on its horizon later."""
    rng = np.random.default_rng(0)
    time = rng.uniform(0.5, 20.0, 50)
    event = rng.random(50) < 0.5
    for horizon in (time.max() - 0.01, time.max(), time.max() + 0.01):
        config = _config(outcomes={"os": {"survival_horizon": 6, "rmst_horizon": float(horizon)}})
        try:
            check_survival_outcome(time, event, 50, horizon)
            fits = True
        except ValueError:
            fits = False
        try:
            check_config_against_data(config, ALL_COLUMNS, float(time.max()))
            passes = True
        except ConfigError:
            passes = False
        assert passes == fits


def test_preflight_landmark_shortens_the_follow_up_available():
    config = _config(time_zero=["decision", {"mode": "landmark", "landmark_days": 365.25}])
    check_config_against_data(config, ALL_COLUMNS, 36.0)  # 24 <= 36 - 12
    with pytest.raises(ConfigError, match=r"after the landmark_365.25d time zero \(11.00 months\)"):
        check_config_against_data(config, ALL_COLUMNS, 35.0 - 12.0)


NO_OS = ["patient_id", "treatment", "crs", "crs_grade", "age"]
NO_CRS = ["patient_id", "treatment", "os_months", "death", "age"]
COX, LOGIT = "cox_interaction", "logistic_interaction"


@pytest.mark.parametrize(
    ("columns", "kind", "bad", "fixed", "expected"),
    [
        (
            NO_OS,
            LOGIT,
            {},
            {"outcomes": {"os": {"enabled": False}}},
            "OS needs column(s) death, os_months",
        ),
        (NO_CRS, COX, {}, {"outcomes": {"crs": {"enabled": False}}}, "needs column crs,"),
        (
            ALL_COLUMNS[:5],
            COX,
            {"outcomes": {"crs": {"grade3": True}}},
            {},
            "needs column crs_grade",
        ),
        (
            ALL_COLUMNS,
            COX,
            {"time_zero": ["infusion"]},
            {"time_zero": ["decision"]},
            "needs column infusion_day",
        ),
        (
            ALL_COLUMNS,
            COX,
            {"evaluation": {"truth_metrics": True}},
            {},
            "need the simulated true_*",
        ),
    ],
)
def test_preflight_names_columns_the_config_needs(columns, kind, bad, fixed, expected):
    """Each config asks for a column the cohort lacks and fails; the fixed config passes."""

    def config(sections):
        return ExperimentConfig.model_validate(
            {"name": "c", "estimators": [{"kind": kind}], **sections}
        )

    with pytest.raises(ConfigError) as info:
        check_config_against_data(config(bad), columns, 30.0)
    assert expected in str(info.value)
    check_config_against_data(config(fixed), columns, 30.0)


# --------------------------------------------------------------------------------------------------
# Checking from the shell: one message on stderr and a non-zero exit


def _acceptance_cases(tmp_path: Path, csv: Path) -> dict[str, tuple[Path, list[str]]]:
    good = write(tmp_path, file_config(csv), "good.yaml")
    return {
        "unknown key": (good, ["data.columns.time_units=days"]),
        "wrong type": (good, ["seeds.global=abc"]),
        "missing data file": (good, [f"data.path={tmp_path / 'gone.csv'}"]),
        "column map names a missing column": (good, ["data.columns.columns.Hb=hemoglobin"]),
        "horizon beyond follow-up": (good, ["outcomes.os.survival_horizon=120"]),
    }


CASES = [
    "unknown key",
    "wrong type",
    "missing data file",
    "column map names a missing column",
    "horizon beyond follow-up",
]


@pytest.mark.parametrize("case", CASES)
def test_check_command_gives_one_message_and_exit_1(tmp_path, user_export, capsys, case):
    path, overrides = _acceptance_cases(tmp_path, user_export)[case]
    argv = [str(path)] + [a for o in overrides for a in ("--set", o)]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: --set ")


def test_check_command_passes_a_good_config(tmp_path, user_export, capsys):
    path = write(tmp_path, file_config(user_export))
    assert main([str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["data"]["columns"]["time_unit"] == "days"


def test_check_command_exit_status_from_the_shell(tmp_path):
    text = MINIMAL.replace("n: 200", "n: 200\n  seeed: 3")
    path = write(tmp_path, text)
    proc = subprocess.run(
        [sys.executable, "-m", "hte.config", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"error: {path} line {line_of(text, 'seeed')}: data.seeed: unknown key; "
        "did you mean 'seed'? (allowed: source, scenario, n, seed)"
    )


def test_preflight_of_a_file_uses_the_follow_up_left_after_each_time_zero(tmp_path, user_export):
    """With a landmark at 180 days the longest follow-up left is the decision-time one minus 180
    days (the longest-followed patient is alive at the landmark), so a horizon just above that
    fails, naming the analysis, and one just below passes."""
    extra = "time_zero:\n  - decision\n  - {mode: landmark, landmark_days: 180}\n"
    path = write(tmp_path, file_config(user_export, extra=extra))
    facts = preflight(load_config(path))
    bound = facts.max_follow_up_months - 180 / DAYS_PER_MONTH
    assert facts.follow_up_by_analysis["landmark_180d"] == pytest.approx(bound, abs=1e-9)
    with pytest.raises(ConfigError, match="after the landmark_180d time zero"):
        preflight(load_config(path, [f"outcomes.os.rmst_horizon={bound + 0.01}"]))
    # every arm must reach the horizon: the shorter-followed arm sets the limit
    arms = facts.arms_by_analysis["landmark_180d"]
    shortest_arm = min(arms, key=lambda a: arms[a][2])
    arm_bound = arms[shortest_arm][2]
    assert arm_bound <= bound
    with pytest.raises(ConfigError, match=f"in the {shortest_arm} arm after the landmark_180d"):
        preflight(load_config(path, [f"outcomes.os.rmst_horizon={arm_bound + 0.01}"]))
    preflight(load_config(path, [f"outcomes.os.rmst_horizon={arm_bound - 0.01}"]))


# --------------------------------------------------------------------------------------------------
# Sweep section (hte sweep)


@pytest.mark.parametrize("name", ["bench.yaml", "sweep_small.yaml"])
def test_shipped_sweep_config_loads_round_trips_and_passes_preflight(name):
    config = load_config(CONFIGS / name)
    resolved = json.loads(json.dumps(resolved_config_dict(config)))
    assert ExperimentConfig.model_validate(resolved).model_dump() == config.model_dump()
    assert config.sweep is not None and config.sweep.n_cells > 0
    preflight(config)


def test_bench_sweep_is_every_estimator_on_both_scenarios_at_n_2000_seeds_1_to_5():
    sweep = load_config(CONFIGS / "bench.yaml").sweep
    assert sweep.scenarios == ["default", "null_effect"] and sweep.sizes == [2000]
    assert sweep.seeds == [1, 2, 3, 4, 5]
    assert {e.kind for e in load_config(CONFIGS / "bench.yaml").estimators} == set(ESTIMATOR_KINDS)
    assert sweep.n_cells == 2 * 1 * len(ESTIMATOR_KINDS) * 5


def test_sweep_lists_left_out_take_the_config_values(tmp_path):
    text = MINIMAL + "  - {name: logit, kind: logistic_interaction}\nsweep: {seeds: [3, 4]}\n"
    config = load_config(write(tmp_path, text), ["seeds.global=9"])
    sweep = config.sweep
    assert sweep.estimators == ["cox", "logit"]  # every configured estimator
    assert (sweep.scenarios, sweep.sizes, sweep.seeds) == (["default"], [200], [3, 4])
    assert load_config(write(tmp_path, MINIMAL + "sweep: {}\n", "s.yaml")).sweep.seeds == [2024]
    assert load_config(write(tmp_path, MINIMAL, "none.yaml")).sweep is None


@pytest.mark.parametrize(
    ("sweep", "key", "expected"),
    [
        (
            "  scenarios: [default, nul_effect]",
            "sweep.scenarios[1]",
            "unknown scenario 'nul_effect'; choose from default, null_effect",
        ),
        (
            "  estimators: [cox, coxx]",
            "sweep.estimators[1]",
            "'coxx' is not in the estimators section; did you mean 'cox'? (names: cox)",
        ),
        ("  sizes: [10]", "sweep.sizes[0]", "greater than or equal to 50 (got 10)"),
        ("  seeds: [1, 2, 1]", "sweep.seeds", "sweep seeds entry 1 appears more than once"),
        ("  seeds: []", "sweep.seeds", "at least 1 item"),
        ("  sizes: [300]\n  seed: [1]", "sweep.seed", "unknown key; did you mean 'seeds'?"),
    ],
)
def test_bad_sweep_section_is_named_with_its_line(tmp_path, sweep, key, expected):
    text = MINIMAL + "sweep:\n" + sweep + "\n"
    msg = config_error(write(tmp_path, text))
    assert len(msg.splitlines()) == 1
    marker = key.split(".")[-1].split("[")[0] + ":"
    assert msg.startswith(f"{tmp_path / 'exp.yaml'} line {line_of(text, '  ' + marker)}: {key}: ")
    assert expected in msg


def test_sweep_needs_synthetic_data(tmp_path, user_export):
    text = file_config(user_export) + "sweep: {seeds: [1]}\n"
    msg = config_error(write(tmp_path, text))
    assert f"line {line_of(text, 'sweep:')}: sweep: a sweep draws synthetic cohorts" in msg


# --------------------------------------------------------------------------------------------------
# Per-arm pre-flight (file data): deaths and follow-up in each arm after each time zero


@pytest.mark.parametrize(
    ("arms", "message"),
    [
        ({"cart": (100, 20, 36.0), "tec": (90, 0, 36.0)}, r"no deaths in the tec arm \(0 of 90"),
        (
            {"cart": (100, 20, 36.0), "tec": (90, 12, 6.0)},
            r"horizon 12 months is beyond the longest follow-up in the tec arm \(6.00 months\)",
        ),
    ],
)
def test_preflight_checks_each_arm(arms, message):
    config = _config()
    check_config_against_data(
        config, ALL_COLUMNS, 36.0, {"decision": dict(arms, tec=(90, 12, 36.0))}
    )
    with pytest.raises(ConfigError, match=message):
        check_config_against_data(config, ALL_COLUMNS, 36.0, {"decision": arms})


def test_model_choice_loss_and_gate_are_config_keys():
    config = load_config(
        CONFIGS / "default.yaml",
        ["evaluation.model_choice_gate=slope", "evaluation.model_choice_loss=r"],
    )
    assert config.evaluation.model_choice_gate == "slope"
    assert config.evaluation.model_choice_loss == "r"
    with pytest.raises(ConfigError, match="model_choice_gate"):
        load_config(CONFIGS / "default.yaml", ["evaluation.model_choice_gate=ranking"])


def test_heldout_folds_take_one_number_for_both_outcomes_or_one_each(tmp_path):
    from hte.config.sections import HeldoutFolds

    assert (HeldoutFolds().os, HeldoutFolds().crs) == (5, 2)  # the run's defaults
    both = HeldoutFolds.model_validate(3)
    assert (both.os, both.crs) == (3, 3) and both.of("os") == 3
    each = HeldoutFolds.model_validate({"os": 4, "crs": 2})
    assert (each.of("os"), each.of("crs")) == (4, 2)
    for bad in (1, 11, {"os": 5, "crs": 1}, {"os": 5, "cr": 2}, True):
        with pytest.raises(ValueError):
            HeldoutFolds.model_validate(bad)
