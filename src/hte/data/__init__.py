"""hte.data."""
