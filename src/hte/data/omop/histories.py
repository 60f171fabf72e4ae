"""Patient histories as the EHR records them, for ``hte.data.omop.synthesize``: prior lines of
therapy as drug exposures, and labs as dated measurements (some missing, some stale, older values
before the latest, a CRS work-up after time zero). Events are frames of (person_id, concept key,
day) that the synthesizer turns into OMOP rows."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

LABS = ("ferritin", "crp", "crcl", "ldh", "ecog", "bm_plasma_pct")


@dataclass(frozen=True)
class EHRRates:
    """How the synthetic EHR loses information (documented losses; the round-trip test counts them)."""

    lab_missing: dict[str, float] = field(
        default_factory=lambda: {
            "ferritin": 0.08,
            "crp": 0.06,
            "crcl": 0.04,
            "ldh": 0.06,
            "ecog": 0.10,
            "bm_plasma_pct": 0.12,
        }
    )
    lab_stale: dict[str, float] = field(
        default_factory=lambda: {
            "ferritin": 0.05,
            "crp": 0.05,
            "crcl": 0.03,
            "ldh": 0.05,
            "ecog": 0.05,
            "bm_plasma_pct": 0.08,
        }
    )
    lookback_days: dict[str, int] = field(
        default_factory=lambda: {
            "ferritin": 30,
            "crp": 30,
            "crcl": 30,
            "ldh": 30,
            "ecog": 60,
            "bm_plasma_pct": 90,
        }
    )
    cytogenetics_missing: float = 0.10
    iss_missing: float = 0.05
    crs_recorded: float = 0.75
    ldh_upper_limit: float = 250.0


# --------------------------------------------------------------------------------------------------
# Small helpers: events as frames with a concept key, dates as day numbers


def as_days(dates: np.ndarray) -> np.ndarray:
    return dates.astype("datetime64[D]")


def event_rows(person_id, key, day, **extra) -> pd.DataFrame:
    """Rows of one concept for the persons given (day = datetime64[D])."""
    person_id = np.asarray(person_id)
    frame = {"person_id": person_id, "_key": key, "_day": as_days(np.asarray(day))}
    for name, value in extra.items():
        frame[name] = (
            np.broadcast_to(np.asarray(value), person_id.shape)
            if np.ndim(value) == 0
            else np.asarray(value)
        )
    return pd.DataFrame(frame)


def uniform_days(rng: np.random.Generator, lo: int, hi: int, n: int) -> np.ndarray:
    return rng.integers(lo, hi + 1, n).astype("timedelta64[D]")


# drugs of line k (k >= 3 cycles through the last tuple); penta patients see two IMiDs and two PIs
_LINES_PENTA = (
    ("lenalidomide", "bortezomib"),
    ("daratumumab", "pomalidomide"),
    ("carfilzomib", "cyclophosphamide"),
)
_LINES_OTHER = (
    ("lenalidomide", "bortezomib"),
    ("daratumumab", "lenalidomide"),
    ("bortezomib", "cyclophosphamide"),
)
_LATER = ("selinexor", "elotuzumab", "isatuximab", "cyclophosphamide")


def prior_line_drugs(sim, pid, dx, index, rng) -> tuple[list[pd.DataFrame], int]:
    """Drug exposures of the prior lines: line k starts at dx + 14 + k * span / L (whole days)."""
    lines = sim["prior_lines"].to_numpy(dtype=int)
    penta = sim["penta_refractory"].to_numpy(dtype=bool)
    bcma = sim["prior_bcma"].to_numpy(dtype=bool)
    span = np.maximum((index - dx).astype(int) - 44, 0)  # last line starts >= 30 days before
    out, merged = [], 0
    starts = []
    for k in range(int(lines.max())):
        has = lines > k
        start = dx + 14 + np.floor(k * span / np.maximum(lines, 1)).astype("timedelta64[D]")
        starts.append(np.where(has, start.astype(int), -1))
        nxt = dx + 14 + np.floor((k + 1) * span / np.maximum(lines, 1)).astype("timedelta64[D]")
        gap = np.maximum((np.minimum(nxt, index) - start).astype(int) - 1, 0)
        length = np.minimum(84, gap).astype("timedelta64[D]")
        if k < 3:
            first = np.where(penta, _LINES_PENTA[k][0], _LINES_OTHER[k][0])
            second = np.where(penta, _LINES_PENTA[k][1], _LINES_OTHER[k][1])
        else:
            first = np.full(len(sim), _LATER[(k - 3) % len(_LATER)])
            second = None
        for drug in (first, second):
            if drug is None:
                continue
            out.append(
                event_rows(pid[has], drug[has], start[has], _end=as_days(start + length)[has])
            )
        last = has & (lines == k + 1) & bcma
        out.append(
            event_rows(pid[last], "belantamab", start[last], _end=as_days(start + length)[last])
        )
    starts_arr = np.column_stack(starts)
    for row in starts_arr:  # lines whose start days coincide (a very short history) merge
        valid = row[row >= 0]
        merged += len(valid) - len(np.unique(valid))
    return out, merged


def perturb(values: np.ndarray, rng: np.random.Generator, sd: float = 0.3) -> np.ndarray:
    return np.round(values * np.exp(rng.normal(0.0, sd, len(values))), 1)


def measurement_rows(sim, pid, index, dx, end_days, rng, rates: EHRRates):
    n = len(sim)
    out: list[pd.DataFrame] = []
    losses: dict[str, int] = {}
    ldh = np.where(
        sim["ldh_high"].to_numpy(dtype=bool), rng.uniform(300, 700, n), rng.uniform(120, 220, n)
    ).round(0)
    values = {
        "ferritin": sim["ferritin"].to_numpy(float),
        "crp": sim["crp"].to_numpy(float),
        "crcl": sim["crcl"].to_numpy(float),
        "ldh": ldh,
        "ecog": sim["ecog"].to_numpy(float),
        "bm_plasma_pct": sim["bm_plasma_pct"].to_numpy(float),
    }
    visit = index - uniform_days(rng, 0, 14, n)
    biopsy = index - uniform_days(rng, 7, 80, n)
    for lab in LABS:
        when = biopsy if lab == "bm_plasma_pct" else visit
        u = rng.random(n)
        missing = u < rates.lab_missing[lab]
        stale = ~missing & (u < rates.lab_missing[lab] + rates.lab_stale[lab])
        fresh = ~missing & ~stale
        value = values[lab]
        other = (
            np.clip(np.round(value + rng.integers(-1, 2, n)), 0, 4)
            if lab == "ecog"
            else perturb(value, rng)
        )
        out.append(event_rows(pid[fresh], lab, when[fresh], value_as_number=value[fresh]))
        earlier = fresh & (rng.random(n) < 0.5)  # an older value: the latest must win
        out.append(
            event_rows(
                pid[earlier],
                lab,
                when[earlier] - uniform_days(rng, 10, 60, int(earlier.sum())),
                value_as_number=other[earlier],
            )
        )
        old = index - np.timedelta64(rates.lookback_days[lab], "D") - uniform_days(rng, 1, 300, n)
        out.append(event_rows(pid[stale], lab, old[stale], value_as_number=other[stale]))
        losses[f"{lab}_missing"] = int(missing.sum())
        losses[f"{lab}_stale"] = int(stale.sum())
    workup = end_days >= 1  # CRS work-up the day after time zero: never a baseline value
    for lab in ("ferritin", "crp"):
        out.append(
            event_rows(
                pid[workup],
                lab,
                index[workup] + np.timedelta64(1, "D"),
                value_as_number=np.round(values[lab][workup] * 3.0, 1),
            )
        )
    at_dx = np.minimum(dx + uniform_days(rng, 0, 30, n), index)
    iss_ok = rng.random(n) >= rates.iss_missing
    out.append(
        event_rows(
            pid[iss_ok],
            "iss_stage",
            at_dx[iss_ok],
            value_as_number=sim["iss_stage"].to_numpy(float)[iss_ok],
        )
    )
    losses["iss_stage_missing"] = int((~iss_ok).sum())
    fish = rng.random(n) >= rates.cytogenetics_missing  # FISH not in the EHR: both flags missing
    for flag in ("high_risk_cytogenetics", "gain_1q"):
        out.append(
            event_rows(
                pid[fish], flag, at_dx[fish], value_as_number=sim[flag].to_numpy(float)[fish]
            )
        )
        losses[f"{flag}_missing"] = int((~fish).sum())
    return out, losses
