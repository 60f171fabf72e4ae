"""hte.design."""
