# The README's commands. Every target creates the environment first if it is missing or stale.
# Bytecode is compiled at setup (--compile-bytecode, compileall): where PYTHONDONTWRITEBYTECODE is
# set, Python never writes .pyc files itself, and every process would compile each module it
# imports from source again (importing hte.pipeline.run: 6-7 s instead of 2.4-3 s).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP  := $(VENV)/.installed

.PHONY: setup browser postgres run app test lint format bench lock clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m compileall -q src
	$(BIN)/python -c "from hte.estimators.histogram_grf import compile_kernels; compile_kernels()"
	touch $(STAMP)

# The main job: the default experiment on the synthetic cohort, end to end, into a run folder.
run: setup
	$(BIN)/hte run configs/default.yaml

# Headless Chromium for the report and app browser tests (Debian's package; Playwright drives it).
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null)
	@test -x $(CHROMIUM) || (echo "chromium not found at $(CHROMIUM): install Debian's chromium package" && exit 1)

# PostgreSQL server binaries for the OMOP builder's tests (Debian's package; the tests initdb a
# temporary cluster on a free localhost port and remove it).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql > /dev/null)
	@ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 || (echo "initdb not found: install Debian's postgresql package" && exit 1)

# The explorer on http://127.0.0.1:7860 for the newest default run (runs it first if there is none).
app: setup
	$(BIN)/python app.py

test: setup browser postgres
	$(BIN)/ruff check src tests benchmarks app.py
	$(BIN)/ruff format --check src tests benchmarks app.py
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

lint: setup
	$(BIN)/ruff check src tests benchmarks app.py
	$(BIN)/ruff format --check src tests benchmarks app.py

format: setup
	$(BIN)/ruff format src tests benchmarks app.py
	$(BIN)/ruff check --fix src tests benchmarks app.py

# Recorded benchmarks (see docs/benchmarks.md): estimators against the synthetic truth, as a dask sweep,
# then the causal survival forest on the Cui et al. (2023) designs and its scaling curve, SHAP speed
# for 1,000 patients, the app's what-if latency (on the newest default run; run first if none), the
# OMOP cohort build of a 100,000-patient synthetic EHR on DuckDB, and the run's model choice by
# held-out DR loss against the truth (seeds 1-10 with the run's held-out folds, n = 2,000, null,
# 802MO-like).
bench: setup
	$(BIN)/hte sweep configs/bench.yaml --workers 2 --out experiments/benchmarks/synthetic_truth
	$(BIN)/python -m benchmarks.bench_selection --seeds 1 2 3 4 5 6 7 8 9 10 --n 2000 --scenarios default --out experiments/benchmarks/learner_selection_shipped/default
	$(BIN)/python -m benchmarks.bench_selection --seeds 1 2 3 4 5 6 7 8 9 10 --n 2000 --scenarios null_effect --out experiments/benchmarks/learner_selection_shipped/null_effect
	$(BIN)/python experiments/benchmarks/learner_selection_rules/preferred_gate.py experiments/benchmarks/learner_selection_5fold_gate/*/rows.jsonl > experiments/benchmarks/learner_selection_rules/preferred_gate.md
	$(BIN)/python -m benchmarks.bench_selection --seeds 1 --n 10000 --scenarios default --out experiments/benchmarks/learner_selection_draws100/n10000
	$(BIN)/python -m benchmarks.model_average_trial --seeds 1 2 3 4 5 6 7 8 9 10 > experiments/benchmarks/model_average_n2000.txt
	$(BIN)/python -m benchmarks.model_average_trial --seeds 1 2 3 4 5 --scenario null_effect > experiments/benchmarks/model_average_null_n2000.txt
	$(BIN)/python -m benchmarks.bcf_point_draws --seeds 1 2 3 > experiments/benchmarks/bcf_point_draws.md
	$(BIN)/python -m benchmarks.bcf_warm_start --seeds 1 2 3 4 5 > experiments/benchmarks/bcf_warm_start.md
	$(BIN)/python -m benchmarks.crs_learners --seeds 1 2 3 4 5 > experiments/benchmarks/crs_learners.md
	$(BIN)/python -m benchmarks.aipw_crs_coverage --seeds 1-40 > experiments/benchmarks/aipw_crs_coverage.md
	$(BIN)/python -m benchmarks.bench_selection --seeds 1 2 3 4 5 --scenarios --seed-study --out experiments/benchmarks/learner_selection_shipped/seed_study
	$(BIN)/python experiments/benchmarks/learner_selection_rules/compare_gates.py > experiments/benchmarks/learner_selection_rules/gates.md
	$(BIN)/python -m benchmarks.bench_csf
	$(BIN)/python -m benchmarks.bench_attributions
	$(BIN)/python -m benchmarks.refutation_hazard --seeds 12
	$(BIN)/python -m benchmarks.app_latency --json-repeats 9
	$(BIN)/python -m benchmarks.omop_build --n 100000

# Re-resolve pinned versions after changing dependencies in pyproject.toml.
lock: setup
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
