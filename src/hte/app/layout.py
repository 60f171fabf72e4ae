"""The explorer's Blocks: four tabs (patient what-if, cohort and subgroups, attributions and
diagnostics, your data) and the ``profile_effects`` API endpoint. Layout only: the handlers are in
``hte.app.callbacks``, the numbers come from the run folder and ``hte.pipeline.profile``."""

from __future__ import annotations

import gradio as gr

from hte.app import callbacks as cb
from hte.app.icons import ICON_CSS
from hte.app.plots import CART_COLOUR, TEC_COLOUR
from hte.app.state import AppContext
from hte.app.tabs import UPLOAD_TYPES, cohort_tab, data_tab, diagnostics_tab, whatif_tab

RESEARCH_NOTE = (
    "**Research tool on observational data, not a treatment recommendation.** Estimates come from "
    "a model fitted to the cohort of this run folder; they carry confounding and modelling "
    "uncertainty that no interval fully shows. Decisions belong to patients and their clinicians."
)

APP_CSS = (
    ICON_CSS
    + f"""
.hte-note {{background: #fff7e6; border-left: 4px solid #d97706; padding: 8px 12px;
            border-radius: 6px; font-size: 0.92em;}}
.hte-warning {{background: #fdecea; border-left: 4px solid #b03a2e; padding: 10px 14px;
               border-radius: 6px; color: #7f1d1d;}}
.hte-ok {{background: #ecfdf3; border-left: 4px solid #2e8540; padding: 8px 14px;
          border-radius: 6px; color: #14532d;}}
.hte-cards {{display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr));
             gap: 10px;}}
.hte-card {{border: 1px solid #e5e7eb; border-radius: 10px; padding: 10px 12px; background: #fff;}}
.hte-card .hte-k {{font-size: 0.8em; color: #6b7280; text-transform: uppercase;
                   letter-spacing: 0.03em;}}
.hte-card .hte-v {{font-size: 1.45em; font-weight: 650; margin-top: 2px;}}
.hte-card .hte-i {{font-size: 0.82em; color: #4b5563;}}
.hte-cart {{color: {CART_COLOUR};}}
.hte-tec {{color: {TEC_COLOUR};}}
.hte-summary {{font-size: 1.02em; line-height: 1.5;}}
.hte-field-msg {{color: #b03a2e; font-size: 0.86em; margin: -4px 0 6px 2px;}}
.hte-term {{text-decoration: underline dotted; cursor: help;}}
.hte-extrapolated {{background: #fdecea; color: #7f1d1d; font-weight: 600; padding: 4px 10px;
                    border-radius: 6px; margin-bottom: 6px;}}
.hte-svg {{display: block; height: auto;}}
#upload-type-message:not(:has([role=alert])) {{display: none;}}
@media (max-width: 700px) {{
  .hte-whatif-row {{flex-direction: column;}}
  h1 {{font-size: 1.3em !important;}}
  #app-subtitle, #run-info {{display: none;}}
  .hte-note {{font-size: 0.8em;}}
}}
footer {{display: none !important;}}
"""
)


# Gradio's upload box drops a file of another type without a word (its file_types filter); this
# names the file and the accepted types in a red box under it instead. The API refuses such a
# file on its own ("Invalid file type"), so this is only what the browser shows.
UPLOAD_TYPES_JS = """
() => {
  const accepted = %s;
  const show = (files) => {
    const box = document.querySelector('#upload-type-message');
    if (!box || !files) { return; }
    const names = Array.from(files).map((f) => f.name);
    const refused = names.filter(
      (n) => !accepted.some((a) => n.toLowerCase().endsWith(a)));
    box.innerHTML = '';
    if (!refused.length) { return; }
    const div = document.createElement('div');
    div.className = 'hte-warning';
    div.setAttribute('role', 'alert');
    div.textContent = refused.join(', ') + ' was not uploaded: the cohort file must be '
      + accepted.slice(0, -1).join(', ') + ' or ' + accepted[accepted.length - 1]
      + ' (a table with one row per patient, or an OMOP database as DuckDB).';
    box.appendChild(div);
  };
  const inUpload = (e) => e.target && e.target.closest && e.target.closest('#upload-file');
  document.addEventListener('change', (e) => {
    if (inUpload(e) && e.target.files) { show(e.target.files); } }, true);
  document.addEventListener('drop', (e) => {
    if (inUpload(e) && e.dataTransfer) { show(e.dataTransfer.files); } }, true);
}
""" % ("[" + ", ".join(f"'{t}'" for t in UPLOAD_TYPES) + "]")


def theme() -> gr.themes.Base:
    return gr.themes.Soft(primary_hue="blue", neutral_hue="slate")


def build_app(context: AppContext) -> gr.Blocks:
    """The Blocks of the explorer for the context's launch run."""
    with gr.Blocks(title="hte explorer: CAR-T vs teclistamab", analytics_enabled=False) as demo:
        run_state = gr.State(str(context.run_dir))
        gr.Markdown("# hte explorer: who gains most from CAR-T over teclistamab?")
        gr.Markdown(
            "Individualized effects on overall survival and cytokine release syndrome (CRS) in "
            "relapsed/refractory multiple myeloma.",
            elem_id="app-subtitle",
        )
        gr.Markdown(RESEARCH_NOTE, elem_classes="hte-note", elem_id="research-note")
        with gr.Row(equal_height=True):
            run_info = gr.Markdown(cb.run_info(context, str(context.run_dir)), elem_id="run-info")
            picker = gr.Dropdown(
                cb.run_choices(context, []),
                value=str(context.run_dir),
                label="Run shown (this browser's runs are kept across reloads)",
                elem_id="run-picker",
                interactive=True,
                scale=0,
                min_width=320,
            )
        my_runs = gr.BrowserState([], storage_key="hte-my-runs")
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("Patient what-if", id="whatif", elem_id="tab-whatif"):
                whatif_tab(context, run_state)
            with gr.Tab("Cohort and subgroups", id="cohort", elem_id="tab-cohort"):
                cohort_outputs = cohort_tab(context, run_state)
            with gr.Tab("Attributions and diagnostics", id="diagnostics", elem_id="tab-diag"):
                diag_outputs = diagnostics_tab(context, run_state)
            with gr.Tab("Your data", id="data", elem_id="tab-data"):
                data_tab(
                    context,
                    run_state,
                    run_info,
                    tabs,
                    cohort_outputs,
                    diag_outputs,
                    picker,
                    my_runs,
                )
        demo.load(
            lambda runs: gr.Dropdown(choices=cb.run_choices(context, runs)),
            [my_runs],
            [picker],
            queue=False,
        )
        picker.input(
            lambda chosen, runs: cb.pick_run(context, chosen, runs),
            [picker, my_runs],
            [run_state],
            queue=False,
        ).success(
            lambda run_dir: cb.reload_values(context, run_dir),
            [run_state],
            [run_info, *cohort_outputs, *diag_outputs],
        )
        # gradio_client calls go through the queue whatever ``queue`` says; there, without a
        # limit of its own, this endpoint would share the queue's default of 4 workers and
        # waiting clients get an estimate message each time one finishes. Its answers are
        # short numpy work (and cached per profile), so any number of them run at once.
        gr.api(
            cb.api_profile_effects(context),
            api_name="profile_effects",
            api_description="One patient profile (covariate -> value) -> OS and CRS effects "
            "with intervals and per-arm predictions; an invalid profile raises an error "
            "that names the field.",
            queue=False,
            concurrency_limit=None,
            concurrency_id="profile_effects",
        )
    context.received_uploads = lambda: demo.upload_file_set  # what the upload route received
    return demo
