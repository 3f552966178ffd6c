"""The Dagster code location for arxiv-forge (see assets/definitions.py)."""
