"""The explorer's four tabs: patient what-if, cohort and subgroups, attributions and
diagnostics, your data. Layout only: the handlers are in ``hte.app.callbacks``."""

from __future__ import annotations

import gradio as gr

from hte.app import callbacks as cb
from hte.app.state import AppContext
from hte.app.your_data import MAX_UPLOAD_MB
from hte.errors import HteError

UPLOAD_TYPES = (".csv", ".parquet", ".pq", ".duckdb")  # what the cohort upload box accepts

OPEN_REPORT_JS = """
async () => {
  const link = document.querySelector('#report-file a');
  if (!link) { return; }
  const tab = window.open('', '_blank');
  const response = await fetch(link.href);
  const blob = new Blob([await response.arrayBuffer()], {type: 'text/html'});
  tab.location = URL.createObjectURL(blob);
}
"""


# --------------------------------------------------------------------------------------------------
# Patient what-if (rebuilt when another run folder is loaded: its covariates may differ)


def whatif_tab(context: AppContext, run_state: gr.State) -> None:
    @gr.render(inputs=run_state)
    def _render(run_dir: str) -> None:
        try:
            explorer = context.explorer(run_dir)
        except (HteError, OSError, ValueError) as exc:  # a run without the explorer's models
            gr.Markdown(
                f"The what-if view is not available for this run folder: {exc}",
                elem_classes="hte-warning",
            )
            return
        fields = explorer.fields()
        examples = list(explorer.examples())
        names = [f.name for f in fields]
        first_field = cb.default_move_field(fields)
        first = cb.whatif_outputs(
            context,
            run_dir,
            names,
            cb.default_values(context, run_dir),
            first_field,
            cb.MOVE_TARGETS[0][1],
        )[len(names) :]
        with gr.Row(equal_height=False, elem_classes="hte-whatif-row"):
            with gr.Column(scale=7, min_width=340, elem_classes="hte-results"):
                warning = gr.HTML(first[0], elem_id="support-warning")
                cards = gr.HTML(first[1], elem_id="effect-cards")
                summary = gr.HTML(first[3], elem_id="plain-summary")
                curves = gr.HTML(first[2], elem_id="curves-plot")
                icons = gr.HTML(first[4], elem_id="icon-array")
                wf_os = gr.HTML(first[5], elem_id="waterfall-os")
                wf_crs = gr.HTML(first[6], elem_id="waterfall-crs")
                gr.Markdown("### What moves it")
                with gr.Row():
                    move_field = gr.Dropdown(
                        [(f.label, f.name) for f in fields],
                        value=first_field,
                        label="Vary this covariate",
                        elem_id="move-field",
                        interactive=True,
                    )
                    move_target = gr.Radio(
                        cb.MOVE_TARGETS,
                        value=cb.MOVE_TARGETS[0][1],
                        label="Effect",
                        elem_id="move-target",
                        interactive=True,
                    )
                moves = gr.HTML(first[7], elem_id="moves-plot")
            with gr.Column(scale=4, min_width=300, elem_classes="hte-form"):
                gr.Markdown("### Patient profile")
                example = gr.Dropdown(
                    examples,
                    label="Start from an example",
                    value=None,
                    elem_id="example-choice",
                    interactive=True,
                )
                reset = gr.Button("Reset to the typical patient", elem_id="reset-button", size="sm")
                inputs, errors = [], []
                for f in fields:
                    inputs.append(cb.field_component(f))
                    errors.append(cb.field_error(f))

        outputs = [*errors, warning, cards, curves, summary, icons, wf_os, wf_crs, moves]
        form = [move_field, move_target, *inputs]

        def update(field_name, target, *values):
            return cb.whatif_outputs(context, run_dir, names, values, field_name, target)

        def update_moves(field_name, target, *values):
            return cb.moves_output(context, run_dir, names, values, field_name, target)

        # user edits only (typing, clicking, choosing): examples and reset update once, below;
        # while values change quickly only the latest is computed. One event for the answer and
        # the figures: sending the figures in a second, chained event was measured slower
        # on a loaded machine (each request costs Gradio more CPU than the figures do).
        gr.on(
            [c.input for c in inputs],
            update,
            form,
            outputs,
            show_progress="hidden",
            trigger_mode="always_last",
            queue=False,
        )
        gr.on(
            [move_field.input, move_target.input],
            update_moves,
            form,
            [moves],
            show_progress="hidden",
            queue=False,
        )
        example.input(
            lambda name: cb.example_values(context, run_dir, name), [example], inputs, queue=False
        ).then(update, form, outputs, queue=False)
        reset.click(lambda: cb.default_values(context, run_dir), None, inputs, queue=False).then(
            update, form, outputs, queue=False
        )


# --------------------------------------------------------------------------------------------------
# Cohort and subgroups


def cohort_tab(context: AppContext, run_state: gr.State) -> list:
    first = cb.cohort_values(context, str(context.run_dir), 0.25)
    headline = gr.Markdown(first[0], elem_id="cohort-headline")
    with gr.Row():
        dist = gr.Plot(
            first[1],
            label="Distribution of per-patient effects",
            show_label=False,
            elem_id="effect-dist",
        )
    with gr.Row(equal_height=False):
        with gr.Column():
            weight = gr.Slider(
                0,
                1,
                value=0.25,
                step=0.05,
                elem_id="crs-weight",
                label="Weight on CRS harm (net benefit = OS gain - weight x extra CRS risk)",
            )
            scatter = gr.Plot(
                first[2],
                label="Benefit against CRS harm, per patient",
                show_label=False,
                elem_id="benefit-harm",
            )
        with gr.Column():
            policy_text = gr.Markdown(first[3], elem_id="policy-text")
            policy = gr.Dataframe(
                first[4],
                label="Policy tree leaves",
                wrap=True,
                column_widths=["52%", "16%", "10%", "22%"],
                elem_id="policy-leaves",
            )
    gr.Markdown("### Subgroups")
    with gr.Row(equal_height=False):
        pre_plot = gr.Plot(
            first[6], label="Prespecified subgroups", show_label=False, elem_id="prespecified-plot"
        )
        toc = gr.Plot(
            first[8],
            label="Targeting operator characteristic (TOC)",
            show_label=False,
            elem_id="toc",
        )
    with gr.Accordion("Subgroup rules (who benefits, in words)", open=True):
        rules = gr.Dataframe(
            first[5],
            wrap=True,
            elem_id="rules-table",
            column_widths=["9%", "37%", "7%", "18%", "10%", "19%"],
        )
    with gr.Accordion("Prespecified subgroups: table", open=False):
        pre_table = gr.Dataframe(first[7], wrap=True)
    gr.Markdown(
        "Rules and policy trees are chosen on the same patients whose doubly robust scores give "
        "their leaf intervals, so those intervals are optimistic; the policy's held-out "
        "(cross-validated) value is the honest one. The TOC curve ranks patients by held-out "
        "predictions. Prespecified subgroups: read the difference from the complement, not the "
        "subgroup's own interval."
    )
    outputs = [headline, dist, scatter, policy_text, policy, rules, pre_plot, pre_table, toc]
    # every change: dragging (on release), arrow keys and typed values alike
    weight.change(
        lambda run, w: cb.cohort_weight_values(context, run, w),
        [run_state, weight],
        [scatter, policy_text, policy],
        trigger_mode="always_last",
    )
    return [weight, *outputs]


# --------------------------------------------------------------------------------------------------
# Attributions and diagnostics


def diagnostics_tab(context: AppContext, run_state: gr.State) -> list:
    run_dir = str(context.run_dir)
    choices = cb.attribution_choices(context, run_dir)
    first_key = choices[0][1] if choices else None
    first = cb.attribution_values(context, run_dir, first_key)
    gr.Markdown("### Global SHAP attributions of the effect")
    fit = gr.Dropdown(choices, value=first_key, label="Estimator and effect", elem_id="attr-fit")
    fidelity = gr.Markdown(first[2], elem_id="attr-fidelity")
    with gr.Row(equal_height=False):
        importance = gr.Plot(
            first[0], label="Mean |SHAP|", show_label=False, elem_id="attr-importance"
        )
        beeswarm = gr.Image(
            first[1],
            label="Beeswarm (from the run folder)",
            type="filepath",
            show_label=False,
            elem_id="attr-beeswarm",
            buttons=["download"],
        )
    dep_choices, dep_value, dep_fig = cb.dependence_initial(context, run_dir, first_key)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=240):
            dep_feature = gr.Dropdown(
                dep_choices, value=dep_value, label="Dependence plot of", elem_id="dep-feature"
            )
        with gr.Column(scale=3):
            dependence = gr.Plot(dep_fig, show_label=False, elem_id="dep-plot")
    diag = cb.diagnostics_values(context, run_dir)
    gr.Markdown("### Overlap and balance")
    overlap_text = gr.Markdown(diag[0], elem_id="overlap-text")
    with gr.Row(equal_height=False):
        overlap = gr.Plot(
            diag[1], label="Propensity overlap", show_label=False, elem_id="overlap-plot"
        )
        balance = gr.Plot(
            diag[2], label="Covariate balance", show_label=False, elem_id="balance-plot"
        )
    gr.Markdown("### Averages, heterogeneity tests (RATE, BLP calibration), robustness")
    averages = gr.Dataframe(diag[3], label="Average effects (IPTW / AIPW)", wrap=True)
    rate = gr.Dataframe(
        diag[4],
        label="RATE (AUTOC, Qini) and BLP calibration per estimator",
        wrap=True,
        elem_id="rate-table",
    )
    with gr.Column():
        refutations = gr.Dataframe(
            diag[5], label="Refutation tests", wrap=True, elem_id="refutations"
        )
        evalues = gr.Dataframe(
            diag[6], label="E-values (unmeasured confounding)", wrap=True, elem_id="evalues"
        )
    report = gr.File(
        diag[7],
        label="The run's HTML report (from the run folder)",
        elem_id="report-file",
        interactive=False,
        visible=diag[7] is not None,
    )
    report_note = gr.Markdown(diag[8])
    open_report = gr.Button(
        "Open the report in a new tab",
        elem_id="open-report",
        size="sm",
        visible=diag[7] is not None,
    )
    # Gradio serves .html files as downloads (its rule against scripts in uploads); the run's
    # own report is opened from the session's private copy as an HTML blob instead. The tab is
    # opened at the click, so popup blockers let it through.
    open_report.click(None, None, None, js=OPEN_REPORT_JS)
    fit.input(
        lambda run, key: cb.attribution_values(context, run, key),
        [run_state, fit],
        [importance, beeswarm, fidelity],
    )
    fit.input(
        lambda run, key, feat: cb.dependence_values(context, run, key, feat),
        [run_state, fit, dep_feature],
        [dep_feature, dependence],
    )
    dep_feature.input(
        lambda run, key, feat: cb.dependence_values(context, run, key, feat)[1],
        [run_state, fit, dep_feature],
        [dependence],
    )
    return [
        fit,
        importance,
        beeswarm,
        fidelity,
        dep_feature,
        dependence,
        overlap_text,
        overlap,
        balance,
        averages,
        rate,
        refutations,
        evalues,
        report,
        report_note,
    ]


# --------------------------------------------------------------------------------------------------
# Your data


def data_tab(
    context, run_state, run_info, tabs, cohort_outputs, diag_outputs, picker, my_runs
) -> None:
    gr.Markdown(
        "Upload a cohort (.csv or .parquet, at most "
        f"{MAX_UPLOAD_MB} MB) with hte's column names (one row per patient at the treatment "
        "decision: patient_id, treatment cart/tec, age, os_months + death and/or crs, "
        "covariates). The file is read as data only and checked against the schema; nothing is "
        "dropped. A valid cohort can then be analysed with one of the configs: its data section "
        "is replaced by your file, everything else (time zero, outcomes, estimators) is kept. "
        "An OMOP CDM database as a DuckDB file (.duckdb) is built into a cohort first "
        "(configs/cohort_omop.yaml: target-trial time zero, attrition shown). "
        "The data stays on this machine."
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            upload = gr.File(
                label="Cohort file",
                file_types=list(UPLOAD_TYPES),
                type="filepath",
                elem_id="upload-file",
            )
            gr.HTML("", elem_id="upload-type-message", padding=False)
            choices = context.config_choices()
            config = gr.Dropdown(
                choices,
                value=cb.default_config_choice(choices),
                label="Config to run",
                elem_id="config-choice",
            )
            run = gr.Button(
                "Run the analysis", variant="primary", interactive=False, elem_id="run-button"
            )
        with gr.Column(scale=3):
            verdict = gr.Markdown("Upload a cohort file to check it.", elem_id="upload-verdict")
            problems = gr.Dataframe(
                label="Problems found",
                wrap=True,
                elem_id="problems-table",
                visible=False,
                column_widths=["16%", "54%", "20%", "10%"],
            )
            run_status = gr.Markdown(
                "No analysis run in this session yet.", elem_id="run-status", min_height=80
            )
    upload.change(
        lambda file: cb.check_upload_values(context, file),
        [upload],
        [verdict, problems, run],
        api_name="check_upload",
    )
    # Run is disabled while a run is going (and given back whatever the outcome)
    running = run.click(
        lambda: gr.Button(interactive=False, value="Running..."), None, [run], queue=False
    ).then(
        lambda file, name, progress=gr.Progress(): cb.run_upload(context, file, name, progress),  # noqa: B008
        [upload, config],
        [run_status, run_state],
        api_name="run_upload",
        concurrency_limit=1,
    )
    running.then(
        lambda: gr.Button(interactive=True, value="Run the analysis"), None, [run], queue=False
    )
    running.success(
        lambda run_dir: cb.reload_values(context, run_dir),
        [run_state],
        [run_info, *cohort_outputs, *diag_outputs],
    ).success(
        lambda run_dir, runs: cb.remember_run(context, run_dir, runs),
        [run_state, my_runs],
        [my_runs, picker],
    ).success(lambda: gr.Tabs(selected="whatif"), None, [tabs])
