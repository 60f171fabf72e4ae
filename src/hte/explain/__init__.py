"""hte.explain."""
