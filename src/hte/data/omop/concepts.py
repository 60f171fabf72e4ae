"""Concept sets of a cohort spec resolved to the database's concept ids, with a report of the
concepts that matched no rows (what the builder warns about, or refuses for required sets)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hte.data.omop.cdm import DOMAINS
from hte.data.omop.connection import Database, OmopError, sql_ids, sql_text
from hte.data.omop.spec import REQUIRED_SETS, CohortSpec, ConceptRef


@dataclass
class ConceptReport:
    """Per concept of each set: the concept ids found and the rows they have in their table."""

    rows: list[dict] = field(default_factory=list)

    @property
    def unmatched(self) -> list[dict]:
        """Concepts with no concept row or no event rows (what the builder warns about)."""
        return [r for r in self.rows if r["n_rows"] == 0]


def resolve_concepts(
    db: Database, spec: CohortSpec, descendants: bool = False
) -> tuple[dict[str, list[int]], ConceptReport]:
    """Concept ids of every set (by vocabulary + code, or vocabulary + name; with ``descendants``
    also every descendant in concept_ancestor, e.g. the clinical drugs of an ingredient), and per
    concept the number of event rows in its domain's table."""
    refs = [(name, cs.domain, ref) for name, cs in spec.concept_sets.items() for ref in cs.concepts]
    conditions = []
    for _, _, ref in refs:
        if ref.code is not None:
            conditions.append(
                f"(vocabulary_id = {sql_text(ref.vocabulary)} AND "
                f"concept_code = {sql_text(ref.code)})"
            )
        else:
            conditions.append(
                f"(vocabulary_id = {sql_text(ref.vocabulary)} AND "
                f"lower(concept_name) = {sql_text(ref.name.lower())})"
            )
    found = db.query(
        f"SELECT concept_id, vocabulary_id, concept_code, lower(concept_name) AS name "
        f"FROM {db.table('concept')} WHERE " + " OR ".join(conditions)
    )
    ids: dict[str, list[int]] = {}
    per_ref: list[tuple[str, str, ConceptRef, list[int]]] = []
    for name, domain, ref in refs:
        if ref.code is not None:
            hit = found[
                (found["vocabulary_id"] == ref.vocabulary) & (found["concept_code"] == ref.code)
            ]
        else:
            hit = found[
                (found["vocabulary_id"] == ref.vocabulary) & (found["name"] == ref.name.lower())
            ]
        got = sorted(
            {int(i) for i in hit["concept_id"]} | ({ref.concept_id} if ref.concept_id else set())
        )
        per_ref.append((name, domain, ref, got))
    if descendants:
        per_ref = _with_descendants(db, per_ref)
    for name, _, _, got in per_ref:
        ids.setdefault(name, [])
        ids[name] = sorted(set(ids[name]) | set(got))
    counts: dict[int, int] = {}
    for domain_name, domain in DOMAINS.items():
        wanted = sorted({i for _, d, _, got in per_ref if d == domain_name for i in got})
        if not wanted:
            continue
        frame = db.query(
            f"SELECT {domain.concept_column} AS concept_id, COUNT(*) AS n "
            f"FROM {db.table(domain.table)} WHERE {domain.concept_column} IN ({sql_ids(wanted)}) "
            f"GROUP BY {domain.concept_column}"
        )
        counts.update(
            {int(c): int(k) for c, k in zip(frame["concept_id"], frame["n"], strict=True)}
        )
    report = ConceptReport()
    for name, domain, ref, got in per_ref:
        report.rows.append(
            {
                "concept_set": name,
                "concept": ref.label,
                "table": DOMAINS[domain].table,
                "column": DOMAINS[domain].concept_column,
                "concept_ids": got,
                "n_rows": int(sum(counts.get(i, 0) for i in got)),
                "problem": None
                if got and sum(counts.get(i, 0) for i in got)
                else ("no concept with this code in the concept table" if not got else "no rows"),
            }
        )
    empty = []
    for name in REQUIRED_SETS:
        rows = [r for r in report.rows if r["concept_set"] == name]
        if sum(r["n_rows"] for r in rows) == 0:
            d = DOMAINS[spec.concept_sets[name].domain]
            codes = "; ".join(f"{r['concept']}: {r['problem']}" for r in rows)
            empty.append(
                f"concept set {name!r} matched no rows of {db.table(d.table)}."
                f"{d.concept_column} ({codes})"
            )
    if empty:
        raise OmopError(
            "required concept sets with no matches:\n" + "\n".join(f"- {e}" for e in empty)
        )
    return ids, report


def _with_descendants(db: Database, per_ref: list) -> list:
    """Each concept's ids plus their descendants (OMOP concept_ancestor)."""
    every = sorted({i for *_, got in per_ref for i in got})
    pairs = db.query(
        f"SELECT ancestor_concept_id AS a, descendant_concept_id AS d "
        f"FROM {db.table('concept_ancestor')} WHERE ancestor_concept_id IN ({sql_ids(every)})"
    )
    below: dict[int, set[int]] = {}
    for a, d in zip(pairs["a"], pairs["d"], strict=True):
        below.setdefault(int(a), set()).add(int(d))
    return [
        (name, domain, ref, sorted(set(got).union(*(below.get(i, set()) for i in got))))
        for name, domain, ref, got in per_ref
    ]
