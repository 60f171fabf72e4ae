"""hte.app."""
