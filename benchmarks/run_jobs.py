"""``hte run`` with the estimator fits and the SHAP attributions in N worker processes.

python -m benchmarks.run_jobs FIT_JOBS SHAP_JOBS OUTPUT_ROOT [CONFIG]

Sets ``hte.pipeline.stages.FIT_JOBS`` and ``hte.pipeline.explain.N_JOBS`` (1 = in this process,
the defaults) and runs the config (default ``configs/default.yaml``) into OUTPUT_ROOT; compare the
two runs' ``timings.json`` and ``metrics.json`` (the numbers must be the same bytes).
"""

from __future__ import annotations

import sys

import hte.pipeline.explain as explain
import hte.pipeline.stages as stages
from hte.cli import app


def main(argv: list[str]) -> None:
    if len(argv) not in (3, 4):
        raise SystemExit(__doc__)
    stages.FIT_JOBS, explain.N_JOBS = int(argv[0]), int(argv[1])
    config = argv[3] if len(argv) == 4 else "configs/default.yaml"
    sys.argv = ["hte", "run", config, "--no-progress", "--output-root", argv[2]]
    app()


if __name__ == "__main__":
    main(sys.argv[1:])
