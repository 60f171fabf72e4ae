"""Benchmark of the run's model choice (issue 10) against the synthetic truth.

For each scenario, size and seed: draw the synthetic cohort, run the pipeline's own stages (time
zero, design, fits, DR scores, held-out refits, ``hte.pipeline.model_choice``) and score against the
cohort's ``true_*`` columns:

* every candidate (learners, the constant, the stack): held-out DR loss, normalized MSE of the
  full-data estimate (the stack: its weights applied to the learners' full-data estimates), the
  coverage of its own intervals where it has some;
* the shown model (the choice): normalized MSE, per-patient coverage of its own interval (the
  constant: the DR average-effect interval for every patient), share of intervals excluding 0;
* "patients like this": coverage of each held-out predicted-benefit group's true mean effect by
  its DR interval, and the per-patient coverage of that band;
* which candidate the DR loss, the R-loss (where the residuals are at hand: CRS from the AIPW
  nuisances, OS from the causal survival forest's training scores) and the truth would pick.

    python -m benchmarks.bench_selection --seeds 1 2 --n 2000 --scenarios default null_effect
        [--seed-study] [--crs-only] [--out experiments/benchmarks/learner_selection]

Rows go to ``<out>/rows.jsonl`` (appended per cell, so a long run can be resumed), the summary to
``<out>/summary.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hte.config import load_config
from hte.evaluation.selection import CONSTANT, LOSSES, STACK, THRESHOLD_SE
from hte.evaluation.truth_scoring import TRUTH_COLUMNS
from hte.pipeline.heterogeneity import (
    HELDOUT_FOLDS,
    all_heldout_effects,
    heldout_fold_nuisances,
)
from hte.pipeline.model_average import preferred_model
from hte.pipeline.model_choice import model_choices
from hte.pipeline.stages import (
    design_diagnostics,
    fit_analysis_nuisances,
    fit_estimators,
    prepare_analysis,
    prepare_cohort,
)
from hte.pipeline.target_scores import target_scores_and_residuals

log = logging.getLogger("hte.bench_selection")
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"
ESTIMATORS = (
    "[{name: causal_survival_forest, kind: causal_survival_forest, params: {n_estimators: 500,"
    " min_samples_leaf: 15}}, {name: dr_learner, kind: dr_learner, params: {final: forest}},"
    " {name: dr_boosted, kind: dr_learner, params: {final: boosted}},"
    " {name: t_learner_rsf, kind: t_learner, params: {base_learner: rsf}},"
    " {name: s_learner_gbsa, kind: s_learner, params: {base_learner: gbsa}},"
    " {name: cox_interaction, kind: cox_interaction}, {name: bcf, kind: bcf},"
    " {name: crs_causal_forest, kind: crs_causal_forest, params: {n_estimators: 500}},"
    " {name: logistic_interaction, kind: logistic_interaction, params: {penalty: 0.1}},"
    " {name: crs_bcf, kind: crs_bcf}]"
)

CRS_ESTIMATORS = (
    "[{name: crs_causal_forest, kind: crs_causal_forest, params: {n_estimators: 500}},"
    " {name: logistic_interaction, kind: logistic_interaction, params: {penalty: 0.1}},"
    " {name: crs_bcf, kind: crs_bcf}]"
)
# --crs-only: the CRS targets and learners alone (no OS fits or model average); the CRS rows are
# the same as in a full run, since no OS fit enters a CRS target's choice
CRS_ONLY = {"enabled": False}

LEGACY_FOLDS = 2  # rows recorded before the fold count was (all 2-fold)
RUN_FOLDS = 0  # --folds 0 (the default): the run's folds per outcome (evaluation.heldout_folds)


def _config(scenario: str, n: int, seed: int, seed_study: bool):
    overrides = [
        f"data.scenario={scenario}",
        f"data.n={n}",
        f"seeds.global={seed}",
        "explanation.shap=false",
        "explanation.subgroup_rules=false",
        "evaluation.robustness=false",
        f"estimators={CRS_ESTIMATORS if CRS_ONLY['enabled'] else ESTIMATORS}",
    ]
    if CRS_ONLY["enabled"]:
        overrides += ["outcomes.os.enabled=false", "evaluation.model_average=null"]
    if seed_study:  # 802MO-like: about one year of follow-up, no 24-month RMST
        overrides += ["outcomes.os.rmst_horizon=null"]
    return load_config(CONFIG, overrides)


def _nmse(pred: np.ndarray, truth: np.ndarray) -> float:
    var = float(np.var(truth))
    mse = float(np.mean((pred - truth) ** 2))
    return mse / var if var > 1e-12 else float("nan")


def _coverage(lo, hi, truth) -> float:
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    if not np.isfinite(lo).all():
        return float("nan")
    return float(np.mean((lo <= truth) & (truth <= hi)))


def _shown(choice, by_name, keep, truth, heldout) -> dict:
    """Figures of the model a choice shows: nMSE is filled in by the caller; per-patient
    coverage of its own interval (the constant: the DR average-effect interval), the share of
    intervals excluding 0 and the "patients like this" group coverage."""
    shown = choice.estimator
    if choice.is_constant:
        lo = np.full(len(truth), choice.constant[1])
        hi = np.full(len(truth), choice.constant[2])
        group = np.zeros(len(truth), dtype=int)
    else:
        est = by_name[shown].estimate
        lo, hi = np.asarray(est.lower, float)[keep], np.asarray(est.upper, float)[keep]
        group = np.searchsorted(np.asarray(choice.cuts), heldout[shown])
    g_cover, p_cover = [], np.zeros(len(truth), bool)
    for k, (_, glo, ghi, _) in enumerate(choice.groups):
        in_k = group == k
        g_cover.append(bool(glo <= truth[in_k].mean() <= ghi))
        p_cover[in_k] = (glo <= truth[in_k]) & (truth[in_k] <= ghi)
    return {
        "chosen": shown,
        "shown_coverage": _coverage(lo, hi, truth),
        "shown_excluding_zero": float(np.mean((lo > 0) | (hi < 0))),
        "group_coverage": float(np.mean(g_cover)),
        "group_band_patient_coverage": float(p_cover.mean()),
    }


def _z(losses: list[dict]) -> dict[str, float]:
    return {
        r["candidate"]: (
            r["diff_vs_constant"] / r["diff_vs_constant_se"] if r["diff_vs_constant_se"] else 0.0
        )
        for r in losses
    }


def run_cell(
    scenario: str, n: int, seed: int, seed_study: bool = False, n_folds: int = RUN_FOLDS
) -> list[dict]:
    """Fit, choose (by DR loss and by R-loss) and score one cohort; one row per target.
    ``n_folds``: held-out folds for every target, or ``RUN_FOLDS`` for the run's per outcome."""
    started = time.perf_counter()
    config = _config(scenario, n, seed, seed_study)
    cohort, _ = prepare_cohort(config)
    data = prepare_analysis(cohort, config.time_zero[0])
    fit_analysis_nuisances(data, config)
    design_diagnostics(data, seed)
    fits = fit_estimators(data, config)
    scores, residuals = target_scores_and_residuals(data, fits, seed)
    tested = [f for f in fits if f.target in scores]
    per_outcome = HELDOUT_FOLDS if n_folds == RUN_FOLDS else n_folds
    folds = heldout_fold_nuisances(tested, data, seed, per_outcome)
    refits = all_heldout_effects(tested, data, seed, folds=folds, n_folds=per_outcome)
    alpha = config.evaluation.alpha
    by_loss = {
        loss: model_choices(
            data,
            fits,
            scores,
            refits,
            alpha,
            seed,
            residuals,
            loss=loss,
            gate=config.evaluation.model_choice_gate,
            preferred=preferred_model(config),
        )
        for loss in LOSSES
    }
    rows = []
    for target, m in by_loss["dr"][0].items():
        if "error" in m:
            rows.append({"target": target, "error": m["error"]})
            continue
        keep = scores[target][0]
        horizon = next(f.horizon for f in fits if f.target == target)
        truth = data.cohort[TRUTH_COLUMNS[(target, horizon)]].to_numpy(float)[keep]
        by_name = {f.estimator: f for f in fits if f.target == target and f.error is None}
        full = {k: np.asarray(f.estimate.effect, float)[keep] for k, f in by_name.items()}
        full[CONSTANT] = np.full(keep.sum(), m["constant_effect"]["estimate"])
        stack = m.get("stack")
        if stack is not None:
            full[STACK] = stack["intercept"] + sum(
                w * full[k] for k, w in stack["weights"].items() if k in full
            )
        nmse = {k: _nmse(v, truth) for k, v in full.items()}
        heldout = {
            k: np.round(refits[by_name[k].key][keep], 10)
            for k in by_name
            if by_name[k].key in refits and not isinstance(refits[by_name[k].key], str)
        }
        learners = [k for k in nmse if k not in (STACK,)]
        r_metrics = by_loss["r"][0][target]
        row = {
            "scenario": scenario,
            "n": n,
            "seed": seed,
            "seed_study": seed_study,
            "target": target,
            "threshold_se": THRESHOLD_SE,
            "gate": config.evaluation.model_choice_gate,
            "n_folds": n_folds,
            "lowest_dr_loss": m["losses"][0]["candidate"],
            "r_loss_pick": r_metrics["losses"][0]["candidate"],
            "oracle_best": min(sorted(learners), key=lambda k: nmse[k]),
            "true_sd": float(np.std(truth)),
            "nmse": nmse,
            "dr_loss": {r["candidate"]: r["loss"] for r in m["losses"]},
            "r_loss": {r["candidate"]: r["loss"] for r in r_metrics["losses"]},
            "diff_vs_constant_z": _z(m["losses"]),
            "r_diff_vs_constant_z": _z(r_metrics["losses"]),
            "own_coverage": {
                k: _coverage(
                    np.asarray(f.estimate.lower, float)[keep],
                    np.asarray(f.estimate.upper, float)[keep],
                    truth,
                )
                for k, f in by_name.items()
            },
            "own_excluding_zero": {
                k: float(
                    np.mean(
                        (np.asarray(f.estimate.lower, float)[keep] > 0)
                        | (np.asarray(f.estimate.upper, float)[keep] < 0)
                    )
                )
                for k, f in by_name.items()
            },
            "stack_weights": None if stack is None else stack["weights"],
            "excluded": m.get("excluded", {}),
            "calibration_slope": {k: c["slope"] for k, c in m["benefit_calibration"].items()},
            "calibration_slope_z": {
                k: c["slope"] / c["slope_se"] if c["slope_se"] else 0.0
                for k, c in m["benefit_calibration"].items()
            },
            "c_for_benefit": {k: c["c_for_benefit"] for k, c in m["benefit_calibration"].items()},
            "seconds": time.perf_counter() - started,
        }
        dr_shown = _shown(by_loss["dr"][1][target], by_name, keep, truth, heldout)
        r_shown = _shown(by_loss["r"][1][target], by_name, keep, truth, heldout)
        row.update(dr_shown, shown_nmse=nmse[dr_shown["chosen"]])
        row.update({f"r_{k}": v for k, v in r_shown.items()})
        row["r_shown_nmse"] = nmse[r_shown["chosen"]]
        rows.append(row)
    return rows


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "-"
    return f"{x:.3f}" if isinstance(x, float) else str(x)


THRESHOLDS = (0.0, 1.0, 2.0)


def _nanmean(values) -> float:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _rule_pick(row, threshold: float, loss: str = "dr") -> str:
    """The candidate a t-SE rule shows, from a row's recorded losses and z values."""
    prefix = "" if loss == "dr" else "r_"
    losses = row["dr_loss" if loss == "dr" else "r_loss"]
    learners = {k: v for k, v in losses.items() if k not in (CONSTANT, STACK)}
    if not learners:
        return CONSTANT
    best = min(sorted(learners), key=learners.get)
    return best if -row[f"{prefix}diff_vs_constant_z"][best] > threshold else CONSTANT


def _scenario(key) -> str:
    folds = (
        f"the run's folds (OS {HELDOUT_FOLDS.os}, CRS {HELDOUT_FOLDS.crs})"
        if key[4] == RUN_FOLDS
        else f"{key[4]}-fold"
    )
    return key[0] + (" (seed_study-like)" if key[2] else "") + f", {folds}"


def _shown_table(frame: pd.DataFrame, keys: list[str], loss: str) -> list[str]:
    p = "" if loss == "dr" else "r_"
    pick = "lowest_dr_loss" if loss == "dr" else "r_loss_pick"
    recorded = sorted(set(frame["gate"].dropna())) if "gate" in frame else []
    gates = (  # older rows did not record it: the run's default gate when they were made
        " and ".join(f"{g} gate" for g in recorded) if recorded else "its gate when recorded"
    )
    out = [
        f"## The shown model, chosen by the {loss.upper()} loss with the run's rule ({gates})",
        "",
        "| scenario | n | target | seeds | chosen (per seed) | shown nMSE | per-patient coverage "
        "| excl. 0 | group coverage | group band per-patient coverage | lowest loss = oracle |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, g in frame.groupby(keys, sort=False):
        out.append(
            f"| {_scenario(key)} | {key[1]} | {key[3]} | {len(g)} | {', '.join(g[p + 'chosen'])} | "
            f"{_fmt(g[p + 'shown_nmse'].mean())} | {_fmt(g[p + 'shown_coverage'].mean())} | "
            f"{_fmt(g[p + 'shown_excluding_zero'].mean())} | "
            f"{_fmt(g[p + 'group_coverage'].mean())} | "
            f"{_fmt(g[p + 'group_band_patient_coverage'].mean())} | "
            f"{int((g[pick] == g['oracle_best']).sum())}/{len(g)} |"
        )
    return [*out, ""]


def _threshold_table(frame: pd.DataFrame, keys: list[str], loss: str) -> list[str]:
    out = [
        f"## The rule's threshold, {loss.upper()} loss (recomputed from the recorded z values)",
        "",
        "Mean nMSE of the model each rule would show (the constant unless the lowest-loss "
        "learner beats it by more than t SE), and how often it shows the constant.",
        "",
        "| scenario | n | target | "
        + " | ".join(f"t = {t:g}: nMSE (constant share)" for t in THRESHOLDS)
        + " | oracle nMSE |",
        "|---|---|---|" + "---|" * (len(THRESHOLDS) + 1),
    ]
    for key, g in frame.groupby(keys, sort=False):
        cells = []
        for t in THRESHOLDS:
            picks = [_rule_pick(r, t, loss) for _, r in g.iterrows()]
            err = [r["nmse"][p] for p, (_, r) in zip(picks, g.iterrows(), strict=True)]
            share = np.mean([p == CONSTANT for p in picks])
            cells.append(f"{_fmt(_nanmean(err))} ({share:.0%})")
        oracle = _nanmean([r["nmse"][r["oracle_best"]] for _, r in g.iterrows()])
        out.append(
            f"| {_scenario(key)} | {key[1]} | {key[3]} | "
            + " | ".join(cells)
            + f" | {_fmt(oracle)} |"
        )
    return [*out, ""]


def summary_markdown(rows: list[dict], command: str) -> str:
    """Per scenario x n x target and per loss: the shown model's figures (means over seeds),
    what was chosen, the rule's threshold, and every candidate's mean nMSE and losses."""
    frame = pd.DataFrame([r for r in rows if "error" not in r])
    out = [
        "# Learner selection by held-out DR loss and R-loss against the synthetic truth",
        "",
        f"Measured with `{command}`.",
        "",
    ]
    frame["n_folds"] = frame.get("n_folds", LEGACY_FOLDS)
    frame["n_folds"] = frame["n_folds"].fillna(LEGACY_FOLDS).astype(int)
    keys = ["scenario", "n", "seed_study", "target", "n_folds"]
    for loss in LOSSES:
        out += _shown_table(frame, keys, loss)
    for loss in LOSSES:
        out += _threshold_table(frame, keys, loss)
    out += [
        "## Every candidate (means over seeds)",
        "",
        "| scenario | n | target | candidate | nMSE | held-out DR loss | z vs constant | "
        "held-out R-loss | R z vs constant | own 95% coverage | calibration slope | "
        "c-for-benefit | stack weight (DR) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, g in frame.groupby(keys, sort=False):
        names = sorted(g.iloc[0]["nmse"], key=lambda k: np.mean([r[k] for r in g["nmse"]]))
        for name in names:

            def mean(col, name=name, g=g):
                vals = [r.get(name) for r in g[col] if r is not None]
                vals = [v for v in vals if v is not None and np.isfinite(v)]
                return float(np.mean(vals)) if vals else None

            out.append(
                f"| {_scenario(key)} | {key[1]} | {key[3]} | {name} | {_fmt(mean('nmse'))} | "
                f"{_fmt(mean('dr_loss'))} | {_fmt(mean('diff_vs_constant_z'))} | "
                f"{_fmt(mean('r_loss'))} | {_fmt(mean('r_diff_vs_constant_z'))} | "
                f"{_fmt(mean('own_coverage'))} | {_fmt(mean('calibration_slope'))} | "
                f"{_fmt(mean('c_for_benefit'))} | {_fmt(mean('stack_weights'))} |"
            )
    return "\n".join(out) + "\n"


CELL_FIELDS = ("scenario", "n", "seed", "seed_study", "n_folds")


def _cell_key(row: dict) -> tuple:
    return tuple(row.get(k, LEGACY_FOLDS if k == "n_folds" else None) for k in CELL_FIELDS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--n", type=int, nargs="+", default=[2000])
    parser.add_argument("--scenarios", nargs="*", default=["default", "null_effect"])
    parser.add_argument(
        "--seed-study",
        action="store_true",
        help="also n = 850, short_follow_up, survival at 12 months only",
    )
    parser.add_argument("--out", default="experiments/benchmarks/learner_selection")
    parser.add_argument(
        "--folds",
        type=int,
        default=RUN_FOLDS,
        help="held-out folds of the refits the losses score, for every target (0, the default: "
        "the run's per outcome)",
    )
    parser.add_argument(
        "--crs-only", action="store_true", help="the CRS targets and learners only (faster)"
    )
    args = parser.parse_args(argv)
    CRS_ONLY["enabled"] = args.crs_only
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows_file = out / "rows.jsonl"
    done = set()
    rows = []
    if rows_file.exists():
        rows = [json.loads(line) for line in rows_file.read_text().splitlines() if line]
        done = {_cell_key(r) for r in rows if "seed" in r}
    cells = [
        (s, n, seed, False, args.folds)
        for s in args.scenarios
        for n in args.n
        for seed in args.seeds
    ]
    if args.seed_study:
        cells += [("short_follow_up", 850, seed, True, args.folds) for seed in args.seeds]
    for cell in cells:
        if cell in done:
            continue
        print(f"cell {cell} ...", flush=True)
        new = run_cell(*cell)
        for r in new:
            r.update(dict(zip(CELL_FIELDS, cell, strict=True)))
        rows += new
        with rows_file.open("a", encoding="utf-8") as fh:
            for r in new:
                fh.write(json.dumps(r, sort_keys=True) + "\n")
        for r in new:
            print(
                f"  {r['target']}: DR shows {r.get('chosen')} ({r.get('shown_nmse', np.nan):.3f}),"
                f" R shows {r.get('r_chosen')} ({r.get('r_shown_nmse', np.nan):.3f}),"
                f" oracle {r.get('oracle_best')}",
                flush=True,
            )
    command = "python -m benchmarks.bench_selection " + " ".join(argv or sys.argv[1:])
    (out / "summary.md").write_text(summary_markdown(rows, command.strip()), encoding="utf-8")
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main()
