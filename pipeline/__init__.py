"""arxiv-forge data pipeline: arXiv sources in, Parquet tables and training shards out.

Plain Python: importing this package never loads Dagster or torch.
"""

__version__ = "0.1.0"
