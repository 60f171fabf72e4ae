"""How far can a learner get on the CRS risk difference at n = 2,000? (issue 10, item 2)

The default cohort's CRS effect varies with ferritin, CRP, marrow burden and the chance of being
infused (sd about 0.09), against 0/1 outcomes. The shipped CRS learners reach nMSE 0.86-0.89
(docs/benchmarks.md); issue 10 asks for 0.50. This tries other families on the same cohorts and
prints the nMSE of each against the true per-patient risk difference (means over seeds):

- ``plug_in``: the analysis's shared, cross-fitted boosted arm risks, mu1 - mu0;
- ``dr_lasso`` / ``dr_ridge``: the AIPW scores regressed on the standardized covariates
  (cross-validated penalty), with and without log ferritin and log CRP;
- ``s_boosted``: one boosted classifier with the arm as a feature, early stopping;
- ``t_l1_logistic``: an L1 logistic regression per arm, cross-validated penalty;
- ``logistic_interaction(penalty)``: the shipped baseline over a penalty grid.

Every prediction is on the cohort the learner was fitted on (as the other full-data figures),
except ``plug_in``, which is out of fold.

    python -m benchmarks.crs_learners --seeds 1 2 3 4 5
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from hte.config import load_config
from hte.estimators.logistic_interaction import LogisticInteractionModel
from hte.pipeline.stages import (
    design_diagnostics,
    fit_analysis_nuisances,
    prepare_analysis,
    prepare_cohort,
)
from hte.pipeline.target_scores import crs_scores

ROOT = Path(__file__).resolve().parents[1]
PENALTIES = (0.1, 10.0, 30.0, 100.0)


def _cohort(seed: int, n: int):
    config = load_config(ROOT / "configs" / "default.yaml", [f"data.n={n}", f"seeds.global={seed}"])
    frame, _ = prepare_cohort(config)
    data = prepare_analysis(frame, config.time_zero[0])
    fit_analysis_nuisances(data, config)
    design_diagnostics(data, seed)
    return data


def _with_log_labs(X: np.ndarray, names: list[str]) -> np.ndarray:
    out = X.copy()
    for name in ("ferritin", "crp"):
        j = names.index(name)
        out[:, j] = np.log(np.maximum(out[:, j], 0.1))
    return out


def _dr_final(Z: np.ndarray, gamma: np.ndarray, kind: str) -> np.ndarray:
    from sklearn.linear_model import LassoCV, RidgeCV
    from sklearn.preprocessing import StandardScaler

    Zs = StandardScaler().fit_transform(Z)
    if kind == "lasso":
        return LassoCV(cv=5, random_state=0).fit(Zs, gamma).predict(Zs)
    return RidgeCV(alphas=np.logspace(0, 5, 30)).fit(Zs, gamma).predict(Zs)


def _s_boosted(X: np.ndarray, w: np.ndarray, y: np.ndarray) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(
        max_depth=2, learning_rate=0.05, max_iter=300, early_stopping=True, random_state=0
    ).fit(np.column_stack([X, w]), y)
    arm = [model.predict_proba(np.column_stack([X, np.full(len(X), a)]))[:, 1] for a in (1, 0)]
    return arm[0] - arm[1]


def _t_l1_logistic(X: np.ndarray, w: np.ndarray, y: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.preprocessing import StandardScaler

    Z = StandardScaler().fit_transform(X)
    risks = []
    for a in (1, 0):
        model = LogisticRegressionCV(
            Cs=10, cv=5, penalty="l1", solver="saga", max_iter=2000, random_state=0
        )
        risks.append(model.fit(Z[w == a], y[w == a]).predict_proba(Z)[:, 1])
    return risks[0] - risks[1]


def cohort_row(seed: int, n: int) -> dict[str, float]:
    """nMSE of every approach on one cohort."""
    data = _cohort(seed, n)
    risks = data.nuisances.crs["crs"]
    keep = risks.keep
    truth = data.cohort["true_cate_crs"].to_numpy()[keep]
    X = data.X.to_numpy(float)[keep]
    XL = _with_log_labs(X, list(data.X.columns))
    w, y = data.treatment[keep], risks.y
    score_keep, gamma, _ = crs_scores(data, "crs", seed)
    assert np.array_equal(score_keep, keep)

    def nmse(tau: np.ndarray) -> float:
        return float(np.mean((tau - truth) ** 2) / np.var(truth))

    row = {
        "constant": nmse(np.full(len(truth), gamma.mean())),
        "plug_in": nmse(risks.mu1 - risks.mu0),
    }
    for kind in ("lasso", "ridge"):
        row[f"dr_{kind}"] = nmse(_dr_final(X, gamma, kind))
        row[f"dr_{kind}_log_labs"] = nmse(_dr_final(XL, gamma, kind))
    row["s_boosted"] = nmse(_s_boosted(X, w, y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # saga's convergence notes on the weakest penalties
        row["t_l1_logistic"] = nmse(_t_l1_logistic(X, w, y))
    for penalty in PENALTIES:
        model = LogisticInteractionModel(penalty=penalty).fit(data.X.iloc[keep], y, w)
        row[f"logistic_interaction({penalty:g})"] = nmse(model.predict(data.X.iloc[keep]))
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args(argv)
    rows = []
    for seed in args.seeds:
        rows.append(cohort_row(seed, args.n))
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in rows[-1].items()), flush=True)
    print(f"\nCRS risk difference, default cohort, n = {args.n}, seeds {args.seeds}\n")
    print("| approach | nMSE (mean) | range |\n|---|---|---|")
    for name in sorted(rows[0], key=lambda k: np.mean([r[k] for r in rows])):
        values = [r[name] for r in rows]
        print(f"| {name} | {np.mean(values):.3f} | {min(values):.3f}-{max(values):.3f} |")


if __name__ == "__main__":
    main()
