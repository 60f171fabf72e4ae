"""Suite-wide settings: the suite runs in 2 pytest workers that keep both cores busy, so the
pipeline's own worker processes are capped at 1 (``HTE_MAX_PROCESSES``; same numbers either way,
tests/pipeline/test_parallel_stages.py lifts the cap to check exactly that)."""

from __future__ import annotations

import os

os.environ.setdefault("HTE_MAX_PROCESSES", "1")
