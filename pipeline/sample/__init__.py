"""A synthetic, deterministic sample bucket laid out like s3://arxiv (the demo's data and the tests' fixture)."""
