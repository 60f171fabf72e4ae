"""Acceptance (issue 15): a randomized non-myeloma trial shaped like ACTG 320 loads through a
column map alone, with no edit of the file, and gives back its effect.

ACTG 320 (Hammer et al., NEJM 1997; the Hosmer-Lemeshow teaching file, 1,151 patients) is not
available offline, so this cohort is synthetic but has its shape: ids and arms as integers
(tx 1 = indinavir + two NRTIs, 0 = two NRTIs), time to AIDS or death in days (under a year:
the trial stopped early), censor 1 = event, sex coded 1 = male / 2 = female, race and IV drug
use as integer codes, Karnofsky score, CD4 count, months of prior zidovudine, ages 15-70 with a
few adolescents, and columns an analysis leaves out (the stratum, the death-only endpoint).
The true hazard ratio is 0.50, the published estimate (95% CI 0.33-0.76); covariate effects are
mild, so the marginal HR is 0.50 too (0.497, 0.474-0.520, on one draw of 100,000), and the 95%
interval covered 0.50 on 38 of 40 seeds (300-339) of 1,151 patients (about 100 events).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from hte.config import load_config, preflight
from hte.data.column_map import ColumnMap
from hte.data.day_zero import apply_day_zero
from hte.data.load import load_cohort
from hte.data.schema import CohortValidationError
from hte.estimators import weighted_cox_hazard_ratio

TRUE_HR = 0.50


def actg320_shaped(n: int = 1151, seed: int = 320) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tx = rng.integers(0, 2, n)
    age = np.clip(rng.normal(38.6, 8.8, n), 19, 73).round()
    age[rng.choice(n, 5, replace=False)] = [15, 16, 16, 17, 17]  # the five adolescents
    cd4 = np.clip(rng.gamma(2.0, 40.0, n), 0, 392).round()
    karnof = rng.choice([70, 80, 90, 100], n, p=[0.05, 0.2, 0.45, 0.3])
    # AIDS or death: exponential, higher with low CD4 and low Karnofsky; HR 0.5 for the 3 drugs
    lin = np.log(TRUE_HR) * tx - 0.004 * (cd4 - 80) - 0.02 * (karnof - 90)
    event_time = rng.exponential(1.0 / (0.00055 * np.exp(lin)))
    follow_up = rng.uniform(30, 364, n).round()
    time = np.minimum(event_time, follow_up).round()  # whole days, some day-0 events
    censor = (event_time <= follow_up).astype(int)
    early = rng.choice(np.flatnonzero(censor == 1), 3, replace=False)
    time[early] = 0.0  # events recorded on the day of randomization
    return pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "time": time,
            "censor": censor,
            "time_d": follow_up,  # the death-only endpoint (not analysed here)
            "censor_d": (censor & (rng.random(n) < 0.3)).astype(int),
            "tx": tx,
            "txgrp": tx + 1,
            "strat2": (cd4 > 50).astype(int),
            "sex": rng.choice([1, 2], n, p=[0.83, 0.17]),
            "raceth": rng.choice([1, 2, 3, 4, 5, 6], n, p=[0.5, 0.28, 0.18, 0.02, 0.01, 0.01]),
            "ivdrug": rng.choice([1, 2, 3], n, p=[0.84, 0.01, 0.15]),
            "hemophil": rng.choice([0, 1], n, p=[0.97, 0.03]),
            "karnof": karnof,
            "cd4": cd4,
            "priorzdv": np.clip(rng.gamma(1.5, 20.0, n), 3, 290).round(),
            "age": age,
        }
    )


MAP = {
    "columns": {"id": "patient_id", "tx": "treatment", "time": "os_months", "censor": "death"},
    "treatment_codes": {1: "cart", 0: "tec"},  # hte's arm labels: cart = the three-drug arm
    "time_unit": "days",
    "values": {
        "sex": {1: "male", 2: "female"},
        "raceth": {1: "white", 2: "black", 3: "hispanic", 4: "asian", 5: "native", 6: "other"},
        "ivdrug": {1: "never", 2: "current", 3: "previous"},
    },
    "ranges": {"age": {"min": 13, "max": 90}, "karnof": [0, 100], "cd4": [0, 2000]},
    "exclude": ["time_d", "censor_d", "txgrp", "strat2"],
}


@pytest.fixture
def trial_file(tmp_path):
    path = tmp_path / "actg320.csv"
    actg320_shaped().to_csv(path, index=False)
    return path


def test_refused_without_the_map_with_the_fix_named(trial_file):
    with pytest.raises(CohortValidationError) as info:
        load_cohort(trial_file)
    text = str(info.value)
    assert "required column patient_id is missing" in text and "treatment" in text


def test_loads_through_a_column_map_alone_and_gives_its_effect(trial_file):
    before = trial_file.read_bytes()
    cohort = load_cohort(trial_file, ColumnMap.model_validate(MAP))
    assert trial_file.read_bytes() == before  # no edit of the file
    assert len(cohort) == 1151  # nobody set aside: adolescents and day-0 events stay
    assert (cohort["age"] < 18).sum() == 5 and set(cohort["sex"]) == {"male", "female"}
    assert not {"time_d", "censor_d", "txgrp", "strat2"} & set(cohort.columns)
    assert (cohort["os_months"] == 0).any()  # day-0 events, moved by the day-zero rule in a run
    ruled, moved = apply_day_zero(cohort)
    assert moved.n_deaths == 3
    # randomized: the unweighted Cox hazard ratio estimates the marginal HR
    hr = weighted_cox_hazard_ratio(
        ruled["os_months"], ruled["death"], (ruled["treatment"] == "cart").to_numpy(dtype=int)
    )
    assert 60 <= cohort["death"].sum() <= 160  # ~96 events in the trial
    assert hr.lower < TRUE_HR < hr.upper  # the 95% interval covers the truth (38/40 seeds)


def test_the_whole_preflight_accepts_it_from_a_config(trial_file, tmp_path):
    config = {
        "name": "actg320",
        "data": {"source": "file", "path": str(trial_file), "columns": MAP},
        "outcomes": {"os": {"survival_horizon": 6, "rmst_horizon": 9}, "crs": {"enabled": False}},
        "estimators": [{"kind": "cox_interaction"}],
    }
    path = tmp_path / "actg320.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    facts = preflight(load_config(path))
    assert facts.cohort is not None and len(facts.cohort) == 1151
    assert set(facts.arms_by_analysis["decision"]) == {"cart", "tec"}
