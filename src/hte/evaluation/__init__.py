"""hte.evaluation."""
