"""Held-out DR-loss power: 2-fold vs 5-fold held-out predictions (S-learner, Cox, T-learner),
survival at 12 months, default cohort n = 2,000. Run from the repository root:
    .venv/bin/python experiments/benchmarks/learner_selection_folds.py SEED
"""
import sys, numpy as np
from hte.config import load_config
from hte.pipeline.stages import prepare_cohort, prepare_analysis, design_diagnostics, fit_estimators
from hte.pipeline.heterogeneity import target_scores, heldout_effects
from hte.evaluation.selection import select_model
seed = int(sys.argv[1])
est = ("[{name: s_learner_gbsa, kind: s_learner, params: {base_learner: gbsa}}, {name: cox_interaction, kind: cox_interaction},"
       " {name: t_learner_rsf, kind: t_learner, params: {base_learner: rsf}}]")
cfg = load_config("configs/default.yaml", [f"seeds.global={seed}", "outcomes.os.rmst_horizon=null", "outcomes.crs.enabled=false",
      f"estimators={est}", "explanation.shap=false"])
cohort, _ = prepare_cohort(cfg)
data = prepare_analysis(cohort, cfg.time_zero[0]); design_diagnostics(data, seed)
fits = fit_estimators(data, cfg)
keep, gamma, _ = target_scores(data, fits, seed)["survival"]
truth = data.cohort["true_cate_surv12"].to_numpy()
v = truth.var()
for k in (2, 5):
    preds = {f.estimator: heldout_effects(f, data, seed, n_folds=k) for f in fits}
    sel = select_model(gamma, preds)
    print(f"folds={k} chosen={sel.chosen}")
    for r in sel.table:
        p = preds.get(r.name)
        hn = np.mean((p - truth) ** 2) / v if p is not None else float("nan")
        z = r.diff_vs_constant / r.diff_vs_constant_se if r.diff_vs_constant_se else 0
        print(f"  {r.name:18s} loss {r.loss:.4f} z {z:+.2f} heldout nMSE {hn:.3f}")
for f in fits:
    print("full", f.estimator, np.mean((f.estimate.effect - truth) ** 2) / v)
