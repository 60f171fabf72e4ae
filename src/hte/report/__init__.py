"""hte.report."""
