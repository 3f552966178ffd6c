"""A synthetic, deterministic sample bucket laid out like s3://arxiv (the demo's data and the tests' fixture).

`write_sample_bucket(out_dir, papers=300, seed=0)` is the entry point (pipeline.sample.bucket); it is
exported lazily so that importing a light module of this package does not load matplotlib.
"""

__all__ = ["SampleSummary", "write_sample_bucket"]


def __getattr__(name: str):
    if name in __all__:
        from pipeline.sample import bucket

        return getattr(bucket, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
