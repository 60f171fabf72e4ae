"""Thin handlers between the Blocks and the run folder / pipeline: each takes component values
and returns component values. No modelling: numbers come from ``RunView`` (files of the run) and
``ProfileExplorer`` (``hte.pipeline.profile``)."""

from __future__ import annotations

import time
from html import escape
from pathlib import Path
from typing import Any

import gradio as gr
import matplotlib.pyplot as plt

from hte.app import answers, plots, your_data
from hte.app import cohort as cohort_views
from hte.app import whatif as wi
from hte.app import whatif_form as form
from hte.app.cache import AnswerCache, key_of
from hte.app.state import AppContext
from hte.app.tables import NOT_IN_RUN
from hte.errors import HteError

MOVE_TARGETS = wi.MOVE_TARGETS


def _close(figures) -> None:
    """Gradio renders figures when a handler returns; pyplot keeps them alive until closed."""
    for fig in figures:
        if isinstance(fig, plt.Figure):
            plt.close(fig)


def run_info(context: AppContext, run_dir: str) -> str:
    view = context.view(run_dir)
    summary = view.run_summary
    data = summary.data
    source = "synthetic cohort (true effects known)" if summary.truth_metrics else "cohort file"
    return (
        f"Run folder `{view.run_dir.parent.name}/{view.run_dir.name}` · {source}, "
        f"{data.n:,} patients · analyses: {', '.join(view.labels)} · "
        f"data sha256 {data.sha256[:12]}"
    )


# --------------------------------------------------------------------------------------------------
# Patient what-if


def field_component(field) -> gr.components.Component:
    return form.field_component(field)


def field_error(field) -> gr.HTML:
    return form.field_error(field)


def default_move_field(fields) -> str | None:
    return form.default_move_field(fields)


def default_values(context: AppContext, run_dir: str) -> list:
    explorer = context.explorer(run_dir)
    return form.form_values(explorer.fields(), explorer.default_profile())


def example_values(context: AppContext, run_dir: str, name: str | None) -> list:
    explorer = context.explorer(run_dir)
    examples = explorer.examples()
    profile = examples.get(name) if name else None
    return form.form_values(explorer.fields(), profile or explorer.default_profile())


def _coverage(context: AppContext, run_dir: str) -> dict:
    """How often the shown models' intervals covered in the run's own check (cached per run)."""
    explorer = context.explorer(run_dir)
    cached = getattr(explorer, "_app_coverage", None)
    if cached is None:
        sources = {
            t: ("average effect (DR)" if s.constant is not None else s.estimator)
            for t, s in explorer.bundle.sources.items()
        }
        try:
            analysis = context.view(run_dir).analysis(explorer.bundle.analysis)
        except (
            KeyError,
            IndexError,
        ):  # a run view without that analysis: say nothing about coverage
            analysis = None
        cached = wi.interval_coverage(analysis, sources)
        explorer._app_coverage = cached
    return cached


MAX_ANSWERS = 512
_EFFECTS = AnswerCache(4 * MAX_ANSWERS)  # (run, profile) -> effects JSON (browser and API)
_HEADLINES = AnswerCache(MAX_ANSWERS)  # (run, form values) -> field messages, headline
_FIGURES = AnswerCache(MAX_ANSWERS)  # (run, form values, what-moves-it) -> figures


def _effects_of(run_dir):
    """``explorer, profile -> effects JSON`` answered from ``_EFFECTS`` when the run has seen the
    profile (the headline and the figures of one field change compute it once)."""

    def effects_of(explorer, profile) -> dict:
        key = key_of(str(run_dir), profile)
        cached = _EFFECTS.get(key)
        if cached is None:
            cached = answers.effects_json(explorer, profile)
            _EFFECTS.put(key, cached)
        return cached

    return effects_of


def whatif_headline(context, run_dir, names, values) -> list:
    """One message per field (empty when fine), then the support box, the cards and the
    summary sentence (all cleared when a field is refused). Kept for the last ``MAX_ANSWERS``
    form states (strings; a run folder's models do not change), so going back to a profile
    (reset, an example, a toggled field) is instant."""
    key = key_of(str(run_dir), list(names), list(values))
    cached = _HEADLINES.get(key)
    if cached is not None:
        return list(cached)
    explorer = context.explorer(run_dir)
    errors, _, head = wi.headline_outputs(
        explorer,
        dict(zip(names, values, strict=True)),
        _coverage(context, run_dir),
        _effects_of(run_dir),
    )
    field_messages = [
        f'<div class="hte-field-msg" role="alert">{escape(errors[n])}</div>' if n in errors else ""
        for n in names
    ]
    out = [*field_messages, *head]
    _HEADLINES.put(key, tuple(out))
    return out


def whatif_figures(context, run_dir, names, values, move_field, move_target) -> list:
    """The curves, icon arrays, two waterfalls and what-moves-it of the form's profile (empty
    when a field is refused), kept like the headline; its effects come from the headline's
    computation (``_EFFECTS``)."""
    key = key_of(str(run_dir), list(names), list(values), move_field, move_target)
    cached = _FIGURES.get(key)
    if cached is not None:
        return list(cached)
    explorer = context.explorer(run_dir)
    out = list(
        wi.figure_outputs(
            explorer,
            dict(zip(names, values, strict=True)),
            move_field,
            move_target,
            _effects_of(run_dir),
        )
    )
    _FIGURES.put(key, tuple(out))
    return out


def whatif_outputs(context, run_dir, names, values, move_field, move_target) -> list:
    """Field messages, then the eight outputs in ``whatif.OUTPUTS`` order (warning, cards,
    curves, summary, icons, OS waterfall, CRS waterfall, what-moves-it): one field change."""
    head = whatif_headline(context, run_dir, names, values)
    figures = whatif_figures(context, run_dir, names, values, move_field, move_target)
    n = len(names)
    named = dict(zip(wi.HEADLINE, head[n:], strict=True)) | dict(
        zip(wi.FIGURES, figures, strict=True)
    )
    return [*head[:n], *(named[k] for k in wi.OUTPUTS)]


def moves_output(context, run_dir, names, values, move_field, move_target) -> str:
    explorer = context.explorer(run_dir)
    try:
        return wi.moves_output(
            explorer, dict(zip(names, values, strict=True)), move_field, move_target
        )
    except answers.InvalidProfile as exc:
        raise gr.Error(str(exc)) from None


def api_profile_effects(context: AppContext):
    """The ``profile_effects`` endpoint on the launch run: a profile dict in, effects JSON out;
    an invalid profile raises ``gr.Error("invalid profile: field '<name>': <message>")``."""

    def profile_effects(profile: dict) -> dict:
        """One patient profile (covariate -> value) -> OS and CRS effects with intervals and
        per-arm predictions. Covariates left out take the cohort's typical value."""
        try:
            return answers.api_effects(context.explorer(), profile, _effects_of(context.run_dir))
        except answers.InvalidProfile as exc:
            raise gr.Error(str(exc)) from None

    return profile_effects


def rest_profile_effects(context: AppContext):
    """The same answer as ``profile_effects`` for a plain JSON POST (``/hte/profile_effects``):
    ``(status, body)``, 200 with the effects or 422 with ``{"error": ...}`` naming the field.
    Served beside Gradio's queue, without its per-request processing."""

    def answer(profile: Any) -> tuple[int, dict]:
        return answers.rest_answer(context.explorer(), profile, _effects_of(context.run_dir))

    return answer


# --------------------------------------------------------------------------------------------------
# Cohort and subgroups


def cohort_values(context: AppContext, run_dir: str, weight: float) -> tuple:
    """headline, distributions, benefit-harm, policy text, policy leaves, rules, prespecified
    plot, prespecified table, TOC."""
    tab = cohort_views.cohort_tab(context.view(run_dir), float(weight))
    out = (
        tab.headline,
        tab.distributions,
        tab.benefit_harm,
        tab.policy_text,
        tab.policy_leaves,
        tab.rules,
        tab.prespecified_plot,
        tab.prespecified,
        tab.toc,
    )
    _close(out)
    return out


def cohort_weight_values(context: AppContext, run_dir: str, weight: float) -> tuple:
    view = context.view(run_dir)
    tab = cohort_views.cohort_tab(view, float(weight))
    _close([tab.distributions, tab.prespecified_plot, tab.toc, tab.benefit_harm])
    return tab.benefit_harm, tab.policy_text, tab.policy_leaves


# --------------------------------------------------------------------------------------------------
# Attributions and diagnostics


def attribution_choices(context: AppContext, run_dir: str) -> list[tuple[str, str]]:
    return cohort_views.fit_choices(context.view(run_dir))


def attribution_values(context: AppContext, run_dir: str, key: str | None) -> tuple:
    view = cohort_views.attribution_view(context.view(run_dir), key)
    _close([view.importance])
    return view.importance, context.servable(view.beeswarm), view.fidelity


def dependence_initial(context: AppContext, run_dir: str, key: str | None, feature=None):
    """(features, chosen feature, dependence plot); the feature is kept when the fit has it."""
    view = context.view(run_dir)
    features = cohort_views.dependence_features(view, key)
    feature = feature if feature in features else (features[0] if features else None)
    fig = cohort_views.dependence_figure(view, key, feature)
    _close([fig])
    return features, feature, fig


def dependence_values(context: AppContext, run_dir: str, key: str | None, feature=None):
    """The feature chooser's update and the dependence plot (for event handlers)."""
    features, feature, fig = dependence_initial(context, run_dir, key, feature)
    return gr.Dropdown(choices=features, value=feature), fig


def diagnostics_values(context: AppContext, run_dir: str) -> tuple:
    """overlap text, overlap plot, balance plot, averages, RATE/BLP, refutations, E-values,
    report file, report note."""
    view = context.view(run_dir)
    analysis = view.analysis()
    overlap = plots.overlap(analysis.overlap or {})
    balance = plots.balance(analysis.balance.smd if analysis.balance is not None else {})
    refutations, evalues = cohort_views.robustness_tables(view)
    report = view.report
    note = (
        f"Report: `{report.name}` of the run folder (open it in a new tab, or download it)."
        if report
        else f"HTML report: {NOT_IN_RUN} (write it with the report command)."
    )
    out = (
        cohort_views.overlap_text(view),
        overlap,
        balance,
        cohort_views.averages_table(view),
        cohort_views.rate_table(view),
        refutations,
        evalues,
        context.servable(report),
        note,
    )
    _close(out)
    return out


# --------------------------------------------------------------------------------------------------
# Your data


def default_config_choice(choices: list[str]) -> str | None:
    for name in ("your_data.yaml", "default.yaml"):
        if name in choices:
            return name
    return choices[0] if choices else None


def _received(context: AppContext, file: str) -> Path:
    """The upload as a file Gradio received (``gr.Error`` for a caller-supplied server path)."""
    from gradio.utils import get_upload_folder

    try:
        return your_data.received_upload(file, context.received_uploads(), get_upload_folder())
    except your_data.UploadRefused as exc:
        raise gr.Error(str(exc)) from None


def check_upload_values(context: AppContext, file: str | None) -> tuple:
    """verdict markdown, problems table (shown only when there are problems), run button."""
    check = your_data.check_upload(None if file is None else _received(context, file))
    problems = gr.Dataframe(check.problems, visible=not check.ok and file is not None)
    return check.message, problems, gr.Button(interactive=check.ok)


def run_upload(context: AppContext, file: str | None, config_name: str | None, progress) -> tuple:
    """Run the chosen config on the upload with a progress bar; returns status and run folder."""
    if file is None or not config_name:
        raise gr.Error("upload a valid cohort and pick a config first")
    file = str(_received(context, file))
    check = your_data.check_upload(file)
    if not check.ok:
        raise gr.Error("the upload does not pass the cohort checks; see the problems table")
    stages: list[str] = []
    total: list[int] = []
    start = time.monotonic()

    def on_stage(name: str) -> None:
        stages.append(name)
        done, n = len(stages), (total[0] if total else None)
        elapsed = time.monotonic() - start
        desc = f"{name} (stage {done}" + (f" of {n}" if n else "") + ")"
        if n and done > 1:
            left = elapsed / (done - 1) * max(n - done + 1, 0)
            desc += f", about {_duration(left)} left"
        progress((done - 1, n), desc=desc, unit="stages")

    progress(0, desc="starting: reading the upload")
    try:
        run_dir = your_data.run_on_upload(
            file, context.config_path(config_name), context.output_root, on_stage, total.append
        )
    except (HteError, OSError, ValueError) as exc:  # bad upload or config: say so in the UI
        raise gr.Error(f"the run failed: {exc}") from None
    return f"Finished: new run folder `{run_dir}`. All tabs now show it.", str(run_dir)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def reload_values(context: AppContext, run_dir: str) -> list[Any]:
    """Every static output of the cohort and diagnostics tabs for a newly loaded run."""
    weight = 0.25
    choices = attribution_choices(context, run_dir)
    key = choices[0][1] if choices else None
    attr = attribution_values(context, run_dir, key)
    dep = dependence_values(context, run_dir, key)
    diag = list(diagnostics_values(context, run_dir))
    diag[7] = gr.File(value=diag[7], visible=diag[7] is not None)
    return [
        run_info(context, run_dir),
        weight,
        *cohort_values(context, run_dir, weight),
        gr.Dropdown(choices=choices, value=key),
        *attr,
        *dep,
        *diag,
    ]


def as_path(value: str | None) -> Path | None:
    return Path(value) if value else None


# --------------------------------------------------------------------------------------------------
# Run picker (this browser's runs, kept in its local storage across reloads)


def _known_run(context: AppContext, run_dir: str) -> Path | None:
    """A run folder named by the browser, accepted only when it is the launch run or a finished
    run folder under the app's output root (a client cannot point the app elsewhere)."""
    try:
        path = Path(run_dir).resolve()
    except (TypeError, ValueError, OSError):
        return None
    if path == context.run_dir:
        return path
    if context.output_root not in path.parents:
        return None
    from hte.runs import is_complete_run

    return path if path.is_dir() and is_complete_run(path) else None


def run_choices(context: AppContext, runs: list | None) -> list[tuple[str, str]]:
    """(label, run folder) for the launch run and this browser's upload runs that still exist."""
    out = [(f"{context.run_dir.name} (launch run)", str(context.run_dir))]
    for run in runs or []:
        path = _known_run(context, str(run))
        if path is not None and str(path) not in {v for _, v in out}:
            out.append((f"{path.name} (your upload)", str(path)))
    return out


def pick_run(context: AppContext, chosen: str, runs: list | None) -> str:
    if chosen not in {v for _, v in run_choices(context, runs)}:
        raise gr.Error("that run folder is not available here")
    return chosen


def remember_run(context: AppContext, run_dir: str, runs: list | None) -> tuple:
    """This browser's runs with the new one, and the picker showing it."""
    runs = [r for r in (runs or []) if r != run_dir] + [run_dir]
    return runs, gr.Dropdown(choices=run_choices(context, runs), value=run_dir)
