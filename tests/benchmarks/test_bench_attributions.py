"""The attribution speed benchmark runs end to end on a small cohort and records what it measured."""

from benchmarks.bench_attributions import main


def test_benchmark_writes_its_table(tmp_path):
    out = tmp_path / "speed.md"
    assert main(["--n", "300", "--n-explain", "100", "--repeats", "1", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "causal survival forest (12-month survival)" in text and "CRS causal forest" in text
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("| causal") or line.startswith("| CRS")
    ]
    for row in rows:
        additivity = float(row.strip("|").split("|")[-1])
        assert additivity < 1e-6  # TreeSHAP is exact for the surrogate
