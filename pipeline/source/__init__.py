"""Where arXiv data comes from: the source bucket, its manifest, chunk tars, OAI-PMH metadata, taxonomy."""
