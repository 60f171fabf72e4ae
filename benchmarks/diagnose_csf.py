"""Why does the causal survival forest do worse on the synthetic RRMM cohort than on Cui et al.?

Separates the error of ``CausalSurvivalForest`` on ``simulate_cohort(n, seed, "default")`` into its
sources, each by one controlled change, on the same cohorts:

* nuisances: the cross-fitted nuisances vs ORACLE ones (true propensity, the simulator's exact
  S(t | x, w) on the grid, a per-arm Kaplan-Meier of the censoring, which is independent of x);
* smoothing: a forest fitted to noise-free scores A = J tau(x) (the true effect itself) shows the
  error the forest makes with perfect scores, i.e. its smoothing bias at these settings;
* intervals: mean |error| vs mean stderr, coverage of the truth vs coverage of the noise-free
  forest's prediction (the forest's own target at these settings);
* forest settings (min_samples_leaf, max_features, ...), propensity clipping, horizon follow-up.

    python -m benchmarks.diagnose_csf [--seeds 1 2 3] [--n 2000] [--trees 500]
        [--target rmst] [--experiments nuisance settings ...]

Prints markdown tables (means over seeds). Slow parts (the cross-fitted nuisances) are computed
once per seed and reused by every forest variant through CausalSurvivalForest's supplied-nuisance
hook, so every variant shares the exact same scores.
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd

from hte.data.simulate import simulate_cohort, true_survival_curves
from hte.design.design_matrix import build_design_matrix, treatment_array
from hte.estimators.causal_survival_forest import CausalSurvivalForest
from hte.estimators.nuisance import (
    SurvivalNuisances,
    cross_fit_pseudo_outcomes,
    risk_sets,
)
from hte.estimators.survival_learners import _KaplanMeier
from hte.evaluation.truth_scoring import markdown_table

HORIZONS = {"rmst": 24.0, "survival": 12.0}
TRUTH = {"rmst": "true_cate_rmst24", "survival": "true_cate_surv12"}


def load(seed: int, n: int = 2000, target: str = "rmst") -> dict:
    """Cohort of the default scenario, encoded covariates, outcome and the true CATE."""
    cohort = simulate_cohort(n, seed, "default")
    X = build_design_matrix(cohort).X
    return {
        "cohort": cohort,
        "X": X.to_numpy(float),
        "names": list(X.columns),
        "W": treatment_array(cohort),
        "time": cohort["os_months"].to_numpy(float),
        "event": cohort["death"].to_numpy(bool),
        "truth": cohort[TRUTH[target]].to_numpy(float),
        "target": target,
        "horizon": HORIZONS[target],
    }


def oracle_nuisances(data: dict, grid: np.ndarray) -> tuple[np.ndarray, SurvivalNuisances]:
    """True propensity and S(t | x, w) on ``grid``; per-arm Kaplan-Meier censoring survival."""
    s1, s0 = true_survival_curves(data["cohort"], grid)
    W = data["W"]
    surv = np.where(W[:, None] == 1, s1, s0)
    _, ce = risk_sets(data["time"], data["event"], grid)
    cens = _KaplanMeier().fit(data["X"], W, ce, grid).predict(data["X"], W)
    e = data["cohort"]["true_propensity"].to_numpy(float)
    return e, SurvivalNuisances(grid=grid, surv=surv, surv1=s1, surv0=s0, cens=cens)


def estimated_nuisances(
    data: dict, seed: int, grid_size: int | None = 25, propensity_clip: float = 0.01
) -> tuple[np.ndarray, SurvivalNuisances]:
    """The cross-fitted nuisances CausalSurvivalForest would use by default."""
    out = cross_fit_pseudo_outcomes(
        data["X"],
        data["W"],
        data["time"],
        data["event"],
        target=data["target"],
        horizon=data["horizon"],
        grid_size=grid_size,
        propensity_clip=propensity_clip,
        random_state=seed,
        n_jobs=2,
    )
    return out["e"], out["nuisances"]


# covariates the simulator's CATE runs through (tec and CAR-T log-hazards, non-relapse mortality)
EFFECT_MODIFIERS = (
    "age",
    "high_risk_cytogenetics",
    "extramedullary",
    "prior_bcma",
    "rapid_progression",
    "bm_plasma_pct",
    "ferritin",
    "crp",
    "crcl",
)


def fit_forest(data: dict, e, nuis, seed: int, columns=None, **params) -> CausalSurvivalForest:
    """CausalSurvivalForest on supplied nuisances (params: forest settings; ``columns``: the
    forest's covariates as indices, default all)."""
    est = CausalSurvivalForest(
        target=data["target"], horizon=data["horizon"], random_state=seed, n_jobs=2, **params
    )
    X = data["X"] if columns is None else data["X"][:, columns]
    return est.fit(
        X,
        time=data["time"],
        event=data["event"],
        treatment=data["W"],
        propensity=e,
        survival_nuisances=nuis,
    )


def noise_free_forest(data: dict, e, seed: int, **params) -> np.ndarray:
    """Forest fitted to A = J tau(x) (the true effect, no outcome noise): pure smoothing error."""
    est = CausalSurvivalForest(
        target=data["target"], horizon=data["horizon"], random_state=seed, n_jobs=2, **params
    )
    J = (data["W"] - e) ** 2
    forest = est._make_forest(*data["X"].shape).fit(data["X"], J, J * data["truth"])
    return forest.predict(data["X"]).ravel()


def score(
    est: CausalSurvivalForest, data: dict, smooth: np.ndarray | None = None, columns=None
) -> dict:
    """NMSE, correlation, coverage, mean |error| / mean stderr (and coverage of ``smooth``)."""
    X, truth = data["X"], data["truth"]
    X = X if columns is None else X[:, columns]
    pred = est.predict(X)
    se = est.predict_stderr(X)
    lo, hi = pred - 1.96 * se, pred + 1.96 * se
    err = pred - truth
    row = {
        "nmse": float(np.mean(err**2) / np.var(truth)),
        "corr": float(np.corrcoef(pred, truth)[0, 1]),
        "coverage": float(np.mean((lo <= truth) & (truth <= hi))),
        "ate_bias": float(err.mean()),
        "mean_abs_err": float(np.mean(np.abs(err))),
        "mean_se": float(se.mean()),
        "|err|/se": float(np.mean(np.abs(err)) / se.mean()),
    }
    if smooth is not None:
        row["cover_smooth"] = float(np.mean((lo <= smooth) & (smooth <= hi)))
        row["nmse_smooth"] = float(np.mean((smooth - truth) ** 2) / np.var(truth))
    return row


def follow_up_table(data: dict, e_hat: np.ndarray, nuis: SurvivalNuisances) -> dict:
    """How much information the horizon leaves: complete cases, censoring survival, weights."""
    t, d, h = data["time"], data["event"], data["horizon"]
    e_true = data["cohort"]["true_propensity"].to_numpy(float)
    complete = d | (t >= h)
    g_h = nuis.cens[:, -1]
    w_true = np.where(data["W"] == 1, 1 / e_true, 1 / (1 - e_true))
    return {
        "complete_share": float(complete.mean()),
        "followed_past_h": float(np.mean(t >= h)),
        "C(h) median": float(np.median(g_h)),
        "C(h) min": float(g_h.min()),
        "share C(h)<0.2": float(np.mean(g_h < 0.2)),
        "e_true min": float(e_true.min()),
        "e_true max": float(e_true.max()),
        "e_hat min": float(e_hat.min()),
        "e_hat max": float(e_hat.max()),
        "max IPW weight (true e)": float(w_true.max()),
        "corr(e_hat, e_true)": float(np.corrcoef(e_hat, e_true)[0, 1]),
        "var(true CATE)": float(np.var(data["truth"])),
    }


def aipw_noise(est: CausalSurvivalForest, truth: np.ndarray) -> dict:
    """Signal vs noise of the doubly robust pseudo-effect Gamma_i (whose mean given x is tau(x)).

    ``snr`` = Var(tau) / Var(Gamma - tau): how much heterogeneity each patient's score carries;
    a forest's achievable error at fixed n falls with it.
    """
    s = est.training_scores_
    w, e, y = s["W"], s["e"], s["pseudo_outcome"]
    gamma = s["mu1"] - s["mu0"] + w * (y - s["mu1"]) / e - (1 - w) * (y - s["mu0"]) / (1 - e)
    noise = float(np.var(gamma - truth))
    return {
        "var_tau": float(np.var(truth)),
        "var_noise": noise,
        "snr": float(np.var(truth)) / noise,
    }


def cui_noise(trees: int, seeds) -> list[dict]:
    """The same signal/noise figures on the Cui et al. designs (estimated nuisances, defaults)."""
    from hte.data.cui2023 import DGPS, generate_cui2023, true_cate

    rows = []
    for dgp in DGPS:
        for seed in seeds:
            data = generate_cui2023(2000, 5, dgp, seed=seed).with_day_zero()
            est = CausalSurvivalForest(
                target="rmst", horizon=data.horizon, n_estimators=trees, random_state=seed
            ).fit(data.X, time=data.time, event=data.event, treatment=data.treatment)
            tau = true_cate(data.X, dgp, "rmst")
            rows.append({"design": dgp, "seed": seed, **aipw_noise(est, tau)})
    return rows


def tree_r2(X: np.ndarray, tau: np.ndarray, depths=(1, 2, 3, 4)) -> dict:
    """Share of Var(tau) a single regression tree of each depth explains, fitted to tau itself:
    how few splits the heterogeneity needs (noise-free, so an upper bound for any tree)."""
    from sklearn.tree import DecisionTreeRegressor

    out = {}
    for d in depths:
        fit = DecisionTreeRegressor(max_depth=d, random_state=0).fit(X, tau).predict(X)
        out[f"R2 depth {d}"] = float(1 - np.var(tau - fit) / np.var(tau))
    return out


def structure_rows(seeds, n: int, target: str) -> list[dict]:
    """tree_r2 of the true CATE on the RRMM cohorts and on the Cui et al. designs."""
    from hte.data.cui2023 import DGPS, generate_cui2023, true_cate

    rows = []
    for seed in seeds:
        data = load(seed, n, target)
        rows.append({"design": f"RRMM {target}", **tree_r2(data["X"], data["truth"])})
        for dgp in DGPS:
            cui = generate_cui2023(n, 5, dgp, seed=seed).with_day_zero()
            rows.append({"design": dgp, **tree_r2(cui.X, true_cate(cui.X, dgp, "rmst"))})
    return rows


def _mean(rows: list[dict], by: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows).groupby(by, sort=False).mean(numeric_only=True).reset_index()


def run(
    seeds, n: int, trees: int, target: str, experiments, settings=None
) -> dict[str, pd.DataFrame]:
    """Every experiment on every seed; returns one table (mean over seeds) per experiment."""
    rows: dict[str, list[dict]] = {k: [] for k in experiments}
    if "structure" in rows:
        rows["structure"] = structure_rows(seeds, n, target)
    needs_nuisances = set(rows) - {"structure"}
    for seed in seeds if needs_nuisances else ():
        data = load(seed, n, target)
        e_hat, nuis_hat = estimated_nuisances(data, seed)
        e_or, nuis_or = oracle_nuisances(data, nuis_hat.grid)
        base = {"n_estimators": trees}
        if "follow_up" in rows:
            rows["follow_up"].append({"seed": seed, **follow_up_table(data, e_hat, nuis_hat)})
        if "nuisance" in rows:
            smooth = noise_free_forest(data, e_or, seed, **base)
            mixes = {
                "estimated (default)": (e_hat, nuis_hat),
                "oracle e only": (e_or, nuis_hat),
                "oracle S only": (
                    e_hat,
                    replace(nuis_hat, surv=nuis_or.surv, surv1=nuis_or.surv1, surv0=nuis_or.surv0),
                ),
                "oracle C (KM) only": (e_hat, replace(nuis_hat, cens=nuis_or.cens)),
                "all oracle": (e_or, nuis_or),
            }
            for name, (e, nuis) in mixes.items():
                est = fit_forest(data, e, nuis, seed, **base)
                rows["nuisance"].append({"nuisances": name, **score(est, data, smooth)})
            rows["nuisance"].append(
                {
                    "nuisances": "noise-free scores",
                    "nmse": float(np.mean((smooth - data["truth"]) ** 2) / np.var(data["truth"])),
                    "corr": float(np.corrcoef(smooth, data["truth"])[0, 1]),
                }
            )
        if "settings" in rows:
            for name in settings or SETTINGS:
                params = SETTINGS[name]
                p = {"n_estimators": trees, **params}
                smooth = noise_free_forest(data, e_or, seed, **p)
                for nuis_name, (e, nuis) in {
                    "est": (e_hat, nuis_hat),
                    "oracle": (e_or, nuis_or),
                }.items():
                    est = fit_forest(data, e, nuis, seed, **p)
                    rows["settings"].append(
                        {"setting": name, "nuisances": nuis_name, **score(est, data, smooth)}
                    )
        if "snr" in rows:
            for name, (e, nuis) in {"est": (e_hat, nuis_hat), "oracle": (e_or, nuis_or)}.items():
                est = fit_forest(data, e, nuis, seed, n_estimators=trees)
                rows["snr"].append(
                    {"design": f"RRMM {target} ({name})", **aipw_noise(est, data["truth"])}
                )
        if "holdout" in rows:
            test = load(seed + 1000, n, target)
            for name, (e, nuis) in {"est": (e_hat, nuis_hat), "oracle": (e_or, nuis_or)}.items():
                est = fit_forest(data, e, nuis, seed, n_estimators=trees)
                oob = est.forest_.oob_predict(data["X"]).ravel()
                oob_nmse = float(np.mean((oob - data["truth"]) ** 2) / np.var(data["truth"]))
                for where, d in {"training (in-sample)": data, "new cohort": test}.items():
                    rows["holdout"].append(
                        {"nuisances": name, "predicted on": where, **score(est, d)}
                    )
                rows["holdout"].append(
                    {"nuisances": name, "predicted on": "training (out-of-bag)", "nmse": oob_nmse}
                )
        if "features" in rows:
            cols = [data["names"].index(c) for c in EFFECT_MODIFIERS]
            for name, (e, nuis) in {"est": (e_hat, nuis_hat), "oracle": (e_or, nuis_or)}.items():
                for label, use in {"all 21": None, "9 effect modifiers": cols}.items():
                    est = fit_forest(data, e, nuis, seed, columns=use, n_estimators=trees)
                    rows["features"].append(
                        {
                            "nuisances": name,
                            "forest covariates": label,
                            **score(est, data, None, use),
                        }
                    )
        if "clip" in rows:
            for clip in (0.01, 0.05, 0.1):
                e = np.clip(e_hat, clip, 1 - clip)
                est = fit_forest(data, e, nuis_hat, seed, **base)
                rows["clip"].append({"propensity_clip": clip, **score(est, data)})
        if "floor" in rows:
            for floor in (0.01, 0.05, 0.1, 0.2):
                est = fit_forest(data, e_hat, nuis_hat, seed, censoring_floor=floor, **base)
                rows["floor"].append({"censoring_floor": floor, **score(est, data)})
        print(f"seed {seed} done", flush=True)
    if "snr" in rows:
        rows["snr"] += cui_noise(trees, seeds)
    keys = {
        "follow_up": ["seed"],
        "nuisance": ["nuisances"],
        "settings": ["setting", "nuisances"],
        "clip": ["propensity_clip"],
        "floor": ["censoring_floor"],
        "snr": ["design"],
        "holdout": ["nuisances", "predicted on"],
        "features": ["nuisances", "forest covariates"],
        "structure": ["design"],
    }
    out = {}
    for name, r in rows.items():
        frame = pd.DataFrame(r)
        out[name] = frame if name == "follow_up" else _mean(r, keys[name])
    return out


# forest settings explored (everything else at the class defaults)
SETTINGS: dict[str, dict] = {
    "default (leaf 15, all features)": {},
    "leaf 5": {"min_samples_leaf": 5},
    "leaf 30": {"min_samples_leaf": 30},
    "leaf 60": {"min_samples_leaf": 60},
    "max_features 7": {"max_features": 7},
    "max_samples 0.3": {"max_samples": 0.3},
    "subforest 10": {"subforest_size": 10},
    "2000 trees": {"n_estimators": 2000},
    "criterion mse": {"criterion": "mse"},
    "not honest": {"honest": False},
}

EXPERIMENTS = (
    "follow_up",
    "nuisance",
    "settings",
    "clip",
    "floor",
    "snr",
    "holdout",
    "features",
    "structure",
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--trees", type=int, default=500)
    parser.add_argument("--target", choices=tuple(HORIZONS), default="rmst")
    parser.add_argument("--experiments", nargs="+", choices=EXPERIMENTS, default=list(EXPERIMENTS))
    parser.add_argument("--settings", nargs="+", choices=tuple(SETTINGS), help="default: all")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*sklearn.utils.parallel.delayed.*")
    tables = run(args.seeds, args.n, args.trees, args.target, args.experiments, args.settings)
    for name, frame in tables.items():
        print(f"\n### {name} ({args.target}, n={args.n}, seeds {args.seeds}, {args.trees} trees)\n")
        print(markdown_table(frame))


if __name__ == "__main__":
    main()
