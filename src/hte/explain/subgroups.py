"""Who benefits most: readable subgroup rules, a treatment policy tree and prespecified subgroups.

One module per view (``subgroup_rules``, ``policy_tree``, ``prespecified``, sharing
``subgroup_base``); this module gathers their public names.

Three views of the same question, each reported with doubly robust (DR) scores Gamma_i whose mean
over a group estimates the group's average effect (AIPW / AIPCW scores, ``hte.evaluation.rate``):

- ``cate_rules``: a shallow regression tree fitted to an estimator's per-patient CATE describes
  *where the model puts* large and small effects. Each leaf is a rule in clinical words with the
  mean CATE and, given DR scores, the leaf's effect estimated from the data (mean score, normal
  interval). The fidelity R^2 says how much of the CATE the few rules capture.
- ``policy_tree``: an exhaustive search over trees of depth <= 2 for the rule "give CAR-T or
  teclistamab" that maximises net benefit, OS gain minus ``crs_weight`` x CRS harm, from the DR
  scores themselves (Athey and Wager 2021, "Policy learning with observational data").
- ``prespecified_subgroups``: the subgroups a clinician asks about (age, prior transplant,
  extramedullary disease, cytogenetics, ECOG) with the subgroup-minus-complement difference and
  its p-value: the interaction test, which is what makes subgroup claims fragile.

All three are in-sample summaries of one cohort: rules and policies chosen on the same patients
that evaluate them look better than they would on new patients.
"""

from hte.explain.policy_tree import PolicyLeaf, PolicyResult, policy_tree, policy_value_cv
from hte.explain.prespecified import PRESPECIFIED, prespecified_subgroups
from hte.explain.subgroup_base import LABELS, Condition, Interval, mean_interval
from hte.explain.subgroup_rules import RuleLeaf, RuleSet, cate_rules

__all__ = [
    "LABELS",
    "PRESPECIFIED",
    "Condition",
    "Interval",
    "PolicyLeaf",
    "PolicyResult",
    "RuleLeaf",
    "RuleSet",
    "cate_rules",
    "mean_interval",
    "policy_tree",
    "policy_value_cv",
    "prespecified_subgroups",
]
