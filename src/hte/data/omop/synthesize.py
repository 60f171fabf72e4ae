"""The synthetic cohort of ``hte.data.simulate`` rendered as an EHR holds it, in OMOP CDM v5.4 tables.

Same n, seed and scenario as ``hte simulate`` give the same patients (``person_source_value`` is the
simulator's ``patient_id``). What the EHR holds, and what it loses (rates in ``EHRRates``):

* person: sex, race, birth date (age at time zero to the day); observation_period from a year
  before the diagnosis (at least two years before time zero) to death or censoring (follow-up in
  whole days, at least 1).
* condition_occurrence: the myeloma diagnosis (its date gives years since diagnosis), extramedullary
  disease, a rapid-progression flag, and CRS: a code with no grade, recorded for only
  ``crs_recorded`` of the true CRS episodes and never after death or censoring.
* drug_exposure: prior lines of therapy (the drugs of a line start the same day; penta-refractory
  patients have been exposed to two IMiDs, two proteasome inhibitors and an anti-CD38 antibody;
  prior BCMA therapy is belantamab in the last line); teclistamab step-up and weekly doses; the
  CAR-T product at infusion; bridging therapy after apheresis (after time zero).
* procedure_occurrence: CAR-T apheresis (time zero), infusion, prior autologous transplant.
* measurement: labs on dated visits before the decision, a per-lab share missing and a share only
  recorded long before the look-back window (stale), older values before the latest, and a CRS
  work-up after time zero (ferritin, CRP) that a correct builder never reads.
* death; and the concept rows used (``hte.data.omop.vocabulary``).

Ineligible persons are added on purpose (``ineligible`` per exclusion criterion: no decision, no
myeloma diagnosis, not triple-class exposed, under 18, prior CAR-T), with source values ``X...``,
so the attrition table has something to count. The true effects and potential outcomes go to a
separate Parquet file keyed by person_id. The dates come from an independent random stream of the
same seed: the decision dates are spread over the scenario's accrual window from 2022-01-01.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hte.data.columns import CART, DAYS_PER_MONTH, PATIENT_ID, TRUTH_PREFIX
from hte.data.omop.cdm import TABLES
from hte.data.omop.connection import connect
from hte.data.omop.histories import (
    EHRRates,
    as_days,
    event_rows,
    measurement_rows,
    prior_line_drugs,
    uniform_days,
)
from hte.data.omop.vocabulary import (
    EHR_TYPE,
    GENDER,
    NOT_HISPANIC,
    RACE,
    concept_ids,
    concept_table,
)
from hte.data.simulate import simulate_cohort
from hte.data.simulation_params import scenario_params

ORIGIN = np.datetime64("2022-01-01", "D")
DAYS_PER_YEAR = 365.25
EXCLUSIONS = ("no_decision", "no_myeloma", "not_triple_class", "under_age", "prior_cart")


@dataclass
class SynthesisResult:
    """Where the tables went, row counts, and the documented losses (per covariate/outcome)."""

    db: str
    truth_path: str | None
    n_patients: int
    n_ineligible: dict[str, int]
    rows: dict[str, int]
    losses: dict[str, int]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


# --------------------------------------------------------------------------------------------------
# Rendering one simulated cohort


@dataclass
class _Rendered:
    person: pd.DataFrame
    observation: pd.DataFrame
    conditions: list[pd.DataFrame]
    drugs: list[pd.DataFrame]
    procedures: list[pd.DataFrame]
    measurements: list[pd.DataFrame]
    death: pd.DataFrame
    losses: dict[str, int]
    index: np.ndarray  # time zero of each person (datetime64[D])


def _render(
    sim: pd.DataFrame,
    first_id: int,
    rng: np.random.Generator,
    rates: EHRRates,
    accrual_months: float,
) -> _Rendered:
    n = len(sim)
    pid = np.arange(first_id, first_id + n)
    index = ORIGIN + np.floor(rng.random(n) * accrual_months * DAYS_PER_MONTH).astype(
        "timedelta64[D]"
    )
    age_days = np.round(sim["age"].to_numpy() * DAYS_PER_YEAR).astype("timedelta64[D]")
    birth = index - age_days
    dx = index - np.round(sim["years_since_diagnosis"].to_numpy() * DAYS_PER_YEAR).astype(
        "timedelta64[D]"
    )
    end_days = np.maximum(1, np.round(sim["os_months"].to_numpy() * DAYS_PER_MONTH)).astype(int)
    end = index + end_days.astype("timedelta64[D]")
    obs_start = np.minimum(dx - np.timedelta64(365, "D"), index - np.timedelta64(730, "D"))
    died = sim["death"].to_numpy(dtype=bool)
    cart = sim["treatment"].to_numpy() == CART
    losses: dict[str, int] = {}

    sex = sim["sex"].to_numpy()
    race = sim["race"].to_numpy()
    birth_ts = pd.to_datetime(birth)
    person = pd.DataFrame(
        {
            "person_id": pid,
            "gender_concept_id": np.where(sex == "male", GENDER["male"], GENDER["female"]),
            "year_of_birth": birth_ts.year,
            "month_of_birth": birth_ts.month,
            "day_of_birth": birth_ts.day,
            "birth_datetime": birth_ts,
            "race_concept_id": [RACE.get(r, 0) for r in race],
            "ethnicity_concept_id": NOT_HISPANIC,
            "person_source_value": sim[PATIENT_ID].to_numpy(),
            "gender_source_value": np.where(sex == "male", "M", "F"),
            "race_source_value": race,
        }
    )
    observation = pd.DataFrame(
        {
            "observation_period_id": pid,
            "person_id": pid,
            "observation_period_start_date": as_days(obs_start),
            "observation_period_end_date": as_days(end),
            "period_type_concept_id": EHR_TYPE,
        }
    )
    death = pd.DataFrame(
        {
            "person_id": pid[died],
            "death_date": as_days(end[died]),
            "death_type_concept_id": EHR_TYPE,
        }
    )

    conditions = [
        event_rows(pid, "myeloma", dx),
        event_rows(pid, "myeloma", index - uniform_days(rng, 3, 20, n)),
    ]
    emd = sim["extramedullary"].to_numpy(dtype=bool)
    span = (index - dx).astype(int)
    emd_day = dx + (rng.random(n) * np.maximum(span - 1, 0)).astype("timedelta64[D]")
    conditions.append(event_rows(pid[emd], "emd", emd_day[emd]))
    late_emd = ~emd & (rng.random(n) < 0.05) & (end_days >= 20)  # coded after time zero: ignored
    conditions.append(event_rows(pid[late_emd], "emd", index[late_emd] + np.timedelta64(20, "D")))
    rapid = sim["rapid_progression"].to_numpy(dtype=bool)
    conditions.append(
        event_rows(
            pid[rapid],
            "rapid_progression",
            index[rapid] - uniform_days(rng, 1, 50, int(rapid.sum())),
        )
    )
    old_flag = ~rapid & (rng.random(n) < 0.3)
    old_day = index - uniform_days(rng, 90, 400, n)
    old_flag &= old_day >= dx
    conditions.append(event_rows(pid[old_flag], "rapid_progression", old_day[old_flag]))

    # CRS: under-recorded, no grade, only while observed
    crs = sim["crs"].to_numpy(dtype=bool)
    infusion = sim["infusion_day"].to_numpy(dtype=float)
    infused = cart & ~np.isnan(infusion)
    inf_day = np.where(infused, np.round(np.nan_to_num(infusion)), 0).astype(int)
    start = np.where(cart, inf_day, 0)
    crs_day = start + np.where(cart, rng.integers(1, 8, n), rng.integers(1, 4, n))
    recorded = rng.random(n) < rates.crs_recorded
    observable = crs & (~cart | infused) & (crs_day <= end_days)
    keep = observable & recorded
    conditions.append(
        event_rows(pid[keep], "crs", index[keep] + crs_day[keep].astype("timedelta64[D]"))
    )
    losses["crs_true"] = int(crs.sum())
    losses["crs_not_observable"] = int((crs & ~observable).sum())
    losses["crs_not_recorded"] = int((observable & ~recorded).sum())

    drugs, lines_merged = prior_line_drugs(sim, pid, dx, index, rng)
    losses["prior_lines_merged"] = lines_merged
    tec = ~cart
    weeks = np.array([0, 2, 4, *range(11, 7 * 53, 7)])  # step-up doses, then weekly
    for offset in weeks:
        given = tec & (end_days >= offset)
        drugs.append(
            event_rows(pid[given], "teclistamab", index[given] + np.timedelta64(int(offset), "D"))
        )
    drugs.append(
        event_rows(
            pid[infused],
            np.where(rng.random(int(infused.sum())) < 0.6, "cilta_cel", "ide_cel"),
            index[infused] + inf_day[infused].astype("timedelta64[D]"),
        )
    )
    bridging = cart & (end_days >= 3)
    drugs.append(event_rows(pid[bridging], "carfilzomib", index[bridging] + np.timedelta64(3, "D")))

    procedures = [
        event_rows(pid[cart], "apheresis", index[cart]),
        event_rows(
            pid[infused],
            "cart_infusion",
            index[infused] + inf_day[infused].astype("timedelta64[D]"),
        ),
    ]
    asct = sim["prior_asct"].to_numpy(dtype=bool)
    asct_day = dx + np.round(0.3 * span).astype("timedelta64[D]")
    asct_day = np.minimum(asct_day, index - np.timedelta64(1, "D"))
    procedures.append(event_rows(pid[asct], "asct", asct_day[asct]))

    measurements, lab_losses = measurement_rows(sim, pid, index, dx, end_days, rng, rates)
    losses.update(lab_losses)
    return _Rendered(
        person, observation, conditions, drugs, procedures, measurements, death, losses, index
    )


# --------------------------------------------------------------------------------------------------
# Ineligible persons


def _make_ineligible(r: _Rendered, groups: dict[str, np.ndarray]) -> None:
    """Break each group's eligibility in exactly one way (in place)."""

    def drop(frames: list[pd.DataFrame], persons: np.ndarray, keys: tuple[str, ...]) -> None:
        for i, f in enumerate(frames):
            frames[i] = f[~(f["person_id"].isin(persons) & f["_key"].isin(keys))]

    drop(r.procedures, groups["no_decision"], ("apheresis", "cart_infusion"))
    drop(r.drugs, groups["no_decision"], ("teclistamab", "cilta_cel", "ide_cel"))
    drop(r.conditions, groups["no_myeloma"], ("myeloma",))
    drop(r.drugs, groups["not_triple_class"], ("daratumumab", "isatuximab"))
    young = r.person["person_id"].isin(groups["under_age"]).to_numpy()
    birth = pd.Series(pd.to_datetime(r.index[young] - np.timedelta64(6000, "D")))  # 16.4 years
    birth.index = r.person.index[young]
    r.person.loc[young, "birth_datetime"] = birth
    r.person.loc[young, "year_of_birth"] = birth.dt.year
    r.person.loc[young, "month_of_birth"] = birth.dt.month
    r.person.loc[young, "day_of_birth"] = birth.dt.day
    prior = groups["prior_cart"]
    obs = r.observation.set_index("person_id").loc[prior]
    first = obs["observation_period_start_date"].to_numpy() + np.timedelta64(30, "D")
    r.procedures.append(event_rows(prior, "cart_infusion", first))


# --------------------------------------------------------------------------------------------------
# Assembling the CDM tables


def _domain_table(
    frames: list[pd.DataFrame],
    table: str,
    concept_col: str,
    date_col: str,
    end_col: str | None = None,
) -> pd.DataFrame:
    ids = concept_ids()
    frame = pd.concat([f for f in frames if len(f)], ignore_index=True)
    frame = frame.sort_values(["person_id", "_day"], kind="stable").reset_index(drop=True)
    out = pd.DataFrame(
        {
            f"{table}_id": np.arange(1, len(frame) + 1),
            "person_id": frame["person_id"].to_numpy(),
            concept_col: frame["_key"].map(ids).to_numpy(),
            date_col: frame["_day"].to_numpy(),
        }
    )
    if end_col is not None:
        end = frame["_end"] if "_end" in frame.columns else pd.Series(pd.NaT, index=frame.index)
        out[end_col] = end.fillna(frame["_day"]).to_numpy()
    if "value_as_number" in frame.columns:
        out["value_as_number"] = frame["value_as_number"].to_numpy()
    prefix = {
        "condition_occurrence": "condition",
        "drug_exposure": "drug",
        "procedure_occurrence": "procedure",
        "measurement": "measurement",
    }[table]
    out[f"{prefix}_type_concept_id"] = EHR_TYPE
    out[f"{prefix}_source_value"] = frame["_key"].to_numpy()
    return out


def omop_tables(
    n: int,
    seed: int,
    scenario: str = "default",
    *,
    ineligible: int | None = None,
    rates: EHRRates | None = None,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, dict]:
    """The CDM tables (name -> frame), the truth (person_id, patient_id, true_* columns) and the
    documented losses, for ``simulate_cohort(n, seed, scenario)`` plus ``ineligible`` persons per
    exclusion criterion (default max(2, n // 200))."""
    rates = rates or EHRRates()
    sim = simulate_cohort(n=n, seed=seed, scenario=scenario)
    accrual = scenario_params(scenario).censoring.accrual_months
    rng = np.random.default_rng([seed, 13])  # the EHR's own stream: dates, missingness
    main = _render(sim, 1, rng, rates, accrual)
    k = max(2, n // 200) if ineligible is None else int(ineligible)
    parts = [main]
    groups: dict[str, np.ndarray] = {}
    if k > 0:
        extra = simulate_cohort(n=k * len(EXCLUSIONS), seed=seed + 1, scenario=scenario)
        extra[PATIENT_ID] = [f"X{i:06d}" for i in range(1, len(extra) + 1)]
        decoys = _render(extra, n + 1, rng, rates, accrual)
        ids = decoys.person["person_id"].to_numpy()
        groups = {name: ids[i * k : (i + 1) * k] for i, name in enumerate(EXCLUSIONS)}
        _make_ineligible(decoys, groups)
        parts.append(decoys)
    tables = {
        "person": pd.concat([p.person for p in parts], ignore_index=True),
        "observation_period": pd.concat([p.observation for p in parts], ignore_index=True),
        "death": pd.concat([p.death for p in parts], ignore_index=True),
        "condition_occurrence": _domain_table(
            [f for p in parts for f in p.conditions],
            "condition_occurrence",
            "condition_concept_id",
            "condition_start_date",
        ),
        "drug_exposure": _domain_table(
            [f for p in parts for f in p.drugs],
            "drug_exposure",
            "drug_concept_id",
            "drug_exposure_start_date",
            end_col="drug_exposure_end_date",
        ),
        "procedure_occurrence": _domain_table(
            [f for p in parts for f in p.procedures],
            "procedure_occurrence",
            "procedure_concept_id",
            "procedure_date",
        ),
        "measurement": _domain_table(
            [f for p in parts for f in p.measurements],
            "measurement",
            "measurement_concept_id",
            "measurement_date",
        ),
        "concept": concept_table(),
    }
    truth_cols = [c for c in sim.columns if c.startswith(TRUTH_PREFIX)]
    truth = pd.concat(
        [
            pd.DataFrame({"person_id": np.arange(1, n + 1), PATIENT_ID: sim[PATIENT_ID]}),
            sim[truth_cols].reset_index(drop=True),
        ],
        axis=1,
    )
    info = {"losses": main.losses, "ineligible": {g: len(v) for g, v in groups.items()}}
    return tables, truth, info


def synthesize(
    n: int,
    seed: int,
    scenario: str,
    out: str | Path,
    *,
    truth_path: str | Path | None = None,
    ineligible: int | None = None,
    rates: EHRRates | None = None,
) -> SynthesisResult:
    """Write the synthetic EHR to ``out`` (a .duckdb path or a database URL), the truth to
    ``truth_path`` (default: beside a .duckdb file, ``<stem>.truth.parquet``)."""
    tables, truth, info = omop_tables(n, seed, scenario, ineligible=ineligible, rates=rates)
    target = str(out)
    is_url = "://" in target
    if not is_url:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).unlink(missing_ok=True)
        target = f"duckdb:///{target}"
    if truth_path is None and not is_url:
        truth_path = Path(str(out)).with_suffix(".truth.parquet")
    with connect(target) as db:
        for name in TABLES:
            db.create_cdm_table(name, tables[name])
    if truth_path is not None:
        truth.to_parquet(truth_path, index=False)
    return SynthesisResult(
        db=target,
        truth_path=str(truth_path) if truth_path is not None else None,
        n_patients=n,
        n_ineligible=info["ineligible"],
        rows={name: len(frame) for name, frame in tables.items()},
        losses=info["losses"],
    )
