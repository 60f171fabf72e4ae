"""Estimator kind -> class: the estimators layer's half of the registry (docs/registry.md).

The kinds themselves (name, outcome, preference rank, label, ``module:Class``) are listed once in
``hte.vocabulary``, below every layer, so the config and the faces can name kinds without importing
modelling code; this module imports each kind's class from its own module on first use.
"""

from __future__ import annotations

import importlib
from functools import cache

from hte.vocabulary import ESTIMATOR_KINDS, EstimatorKind, estimator_kind

__all__ = ["EstimatorKind", "estimator_class", "registered_kinds"]


@cache
def estimator_class(kind: str) -> type:
    """The estimator class of a kind (``ValueError`` naming the known kinds for an unknown one)."""
    try:
        entry = estimator_kind(kind)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    module, _, name = entry.path.partition(":")
    return getattr(importlib.import_module(module), name)


def registered_kinds() -> tuple[EstimatorKind, ...]:
    """Every registered kind, in the vocabulary's order."""
    return ESTIMATOR_KINDS
