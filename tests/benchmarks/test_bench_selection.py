"""The selection benchmark's summary (benchmarks.bench_selection) from recorded rows: the DR and
R-loss rules are recomputed from the z values each row holds, per fold count."""

from __future__ import annotations

from benchmarks.bench_selection import _cell_key, _rule_pick, summary_markdown


def _row(seed: int, n_folds: int | None = 5) -> dict:
    row = {
        "scenario": "default",
        "n": 2000,
        "seed": seed,
        "seed_study": False,
        "target": "survival",
        "chosen": "constant",
        "r_chosen": "bcf",
        "shown_nmse": 1.0,
        "r_shown_nmse": 0.3,
        "shown_coverage": 0.5,
        "r_shown_coverage": 0.93,
        "shown_excluding_zero": 0.0,
        "r_shown_excluding_zero": 0.2,
        "group_coverage": 1.0,
        "r_group_coverage": 0.8,
        "group_band_patient_coverage": 0.6,
        "r_group_band_patient_coverage": 0.7,
        "lowest_dr_loss": "bcf",
        "r_loss_pick": "bcf",
        "oracle_best": "bcf",
        "nmse": {"bcf": 0.3, "cox": 0.6, "constant": 1.0},
        "dr_loss": {"bcf": 1.0, "cox": 1.1, "constant": 1.2},
        "r_loss": {"bcf": 0.5, "cox": 0.52, "constant": 0.6},
        "diff_vs_constant_z": {"bcf": -1.5, "cox": -0.5, "constant": 0.0},
        "r_diff_vs_constant_z": {"bcf": -2.5, "cox": -1.0, "constant": 0.0},
        "own_coverage": {"bcf": 0.93},
        "stack_weights": None,
        "calibration_slope": {},
        "c_for_benefit": {},
    }
    if n_folds is not None:
        row["n_folds"] = n_folds
    return row


def test_rules_are_recomputed_from_the_recorded_z_values():
    row = _row(1)
    assert _rule_pick(row, 2.0, "dr") == "constant"  # z 1.5 < 2
    assert _rule_pick(row, 1.0, "dr") == "bcf"
    assert _rule_pick(row, 2.0, "r") == "bcf"  # z 2.5 > 2


def test_summary_has_both_losses_and_keeps_fold_counts_apart():
    text = summary_markdown([_row(1), _row(2), _row(1, n_folds=None)], "cmd")
    assert "chosen by the DR loss" in text and "chosen by the R loss" in text
    assert "default, 5-fold" in text and "default, 2-fold" in text  # rows without n_folds: 2
    assert "| constant, constant |" in text and "| bcf, bcf |" in text


def test_old_rows_without_a_fold_count_resume_as_two_folds():
    assert _cell_key(_row(1, n_folds=None)) == ("default", 2000, 1, False, 2)


def test_summary_names_the_gate_the_rows_were_chosen_by():
    slope = [{**_row(1), "gate": "slope"}, {**_row(2), "gate": "slope"}]
    assert "with the run's rule (slope gate)" in summary_markdown(slope, "cmd")
    older = summary_markdown([_row(1)], "cmd")  # rows from before the gate was recorded
    assert "(its gate when recorded)" in older and "2-SE" not in older.split("## The rule")[0]
