"""hte.app: the Gradio explorer of a run folder (patient what-if, cohort and subgroups,
attributions and diagnostics, your data) and its ``profile_effects`` API endpoint.

``launch(run_dir=None, host="127.0.0.1", port=7860, share=False)`` starts it. The app only reads
run folders and calls the pipeline; it holds no modelling code.
"""

from hte.app.launch import default_run, launch, main, serve

__all__ = ["default_run", "launch", "main", "serve"]
