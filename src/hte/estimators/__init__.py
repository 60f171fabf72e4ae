"""hte.estimators."""
