"""``feature_names_match``: whether a frame's columns pass an estimator's name check at predict
time, so that the same rows may be given as an array."""

from types import SimpleNamespace

from hte.array_checks import feature_names_match


def test_the_fitted_names_in_order_match_and_others_do_not():
    fitted = SimpleNamespace(feature_names_in_=["age", "ecog", "crp"])
    assert feature_names_match(["age", "ecog", "crp"], fitted)
    assert not feature_names_match(["ecog", "age", "crp"], fitted)  # another order
    assert not feature_names_match(["age", "ecog"], fitted)  # a column missing
    assert not feature_names_match(["age", "ecog", "crp_mg_l"], fitted)  # renamed


def test_a_model_fitted_on_an_array_takes_any_names():
    assert feature_names_match(["age", "ecog"], SimpleNamespace(feature_names_in_=["x0", "x1"]))
    assert feature_names_match(["age", "ecog"], SimpleNamespace())
