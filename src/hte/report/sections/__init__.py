"""The report's sections, one module each, every one built from the run folder alone (no refitting).

Every section returns ``{"id", "title", "lead", "blocks"}``. A part the run folder does not hold
is shown as "not run in this run folder", never skipped silently. ``SECTIONS`` is the report's
order.
"""

from hte.report.sections.attributions import attributions_section
from hte.report.sections.averages import averages_section
from hte.report.sections.benefit_harm import benefit_harm_section
from hte.report.sections.cate import cate_section
from hte.report.sections.cohort import cohort_section
from hte.report.sections.common import order_estimators
from hte.report.sections.heterogeneity import heterogeneity_section
from hte.report.sections.model_choice import model_choice_section
from hte.report.sections.provenance import provenance_section
from hte.report.sections.robustness import robustness_section
from hte.report.sections.subgroups import subgroups_section
from hte.report.sections.summary import summary_section

SECTIONS = (
    summary_section,
    cohort_section,
    averages_section,
    cate_section,
    model_choice_section,
    benefit_harm_section,
    subgroups_section,
    heterogeneity_section,
    robustness_section,
    attributions_section,
    provenance_section,
)

__all__ = ["SECTIONS", "order_estimators"]
