"""The synthetic-truth benchmark's grid: valid config entries, one per estimator kind."""

from benchmarks.bench_synthetic import BENCH_ESTIMATORS


def test_every_bench_estimator_is_a_valid_config_entry():
    from hte.config import EstimatorSpec

    specs = [EstimatorSpec.model_validate(e) for e in BENCH_ESTIMATORS]
    assert {s.outcome for s in specs} == {"os", "crs"}
    assert len({s.name for s in specs}) == len(specs)
