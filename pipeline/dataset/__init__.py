"""Parquet schemas, atomic writers/readers, training shards."""
