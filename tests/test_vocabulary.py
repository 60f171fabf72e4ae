"""The one vocabulary (hte.vocabulary, docs/registry.md) agrees with the modules that read it:
the config's outcomes, the truth columns and covariate labels beside the column schema, the
preference order the profile explorer always used."""

import pytest

from hte import vocabulary
from hte.config import OSOutcome
from hte.data.columns import (
    COVARIATE_LABELS,
    NAMED_COVARIATES,
    TRUE_CATE_COLUMNS,
    covariate_label,
    covariate_short_label,
)


def test_targets_are_ordered_and_split_by_outcome():
    assert vocabulary.TARGET_NAMES == ("survival", "rmst", "crs", "crs_g3")
    assert vocabulary.OS_TARGETS == ("survival", "rmst")
    assert vocabulary.CRS_TARGETS == ("crs", "crs_g3")
    assert [vocabulary.TARGET_ORDER[t] for t in vocabulary.TARGET_NAMES] == [0, 1, 2, 3]
    with pytest.raises(KeyError, match="unknown target 'os12'; targets: survival, rmst"):
        vocabulary.target("os12")


def test_each_os_target_has_its_config_horizon():
    """The config's (target, horizon) pairs come from the targets' horizon keys."""
    os = OSOutcome(survival_horizon=6, rmst_horizon=18)
    assert os.targets() == [("survival", 6.0), ("rmst", 18.0)]
    assert OSOutcome(survival_horizon=None, rmst_horizon=18).targets() == [("rmst", 18.0)]
    for name in vocabulary.OS_TARGETS:
        assert vocabulary.target(name).horizon_key in OSOutcome.model_fields


def test_preference_orders():
    """The profile explorer's former order, with the BCF kinds last (so its choices are
    unchanged); kinds of the other outcome and unknown kinds rank after every known one."""
    assert (
        vocabulary.preference("os")
        == vocabulary.preference("rmst")
        == (
            "causal_survival_forest",
            "dr_learner",
            "cox_interaction",
            "t_learner",
            "s_learner",
            "bcf",
        )
    )
    assert vocabulary.preference("crs_g3") == (
        "crs_causal_forest",
        "logistic_interaction",
        "crs_bcf",
    )
    assert vocabulary.preference_rank("dr_learner", "survival") == 1
    assert vocabulary.preference_rank("crs_bcf", "survival") == 6
    assert vocabulary.preference_rank("my_forest", "crs") == 3
    assert vocabulary.preference_rank("dr_learner", "not_a_target") == 0
    assert vocabulary.kind_label("cox_interaction") == "Cox with interactions"
    assert vocabulary.kind_label("my_forest") is None


def test_truth_columns_and_labels_live_beside_the_column_schema():
    assert {t for t, _ in TRUE_CATE_COLUMNS} == set(vocabulary.TARGET_NAMES)
    assert set(COVARIATE_LABELS) == set(NAMED_COVARIATES)
    assert covariate_label("crp") == ("C-reactive protein", "mg/L")
    assert covariate_short_label("ecog") == "ECOG"
    assert covariate_label("site_code") == ("Site code", None)
    assert covariate_short_label("site_code") == "site code"
