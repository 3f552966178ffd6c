"""Partition sets: chunks (dynamic, from the manifest), metadata days, arXiv categories, text fields."""

import dagster as dg

from pipeline.source.taxonomy import FIELDS, active_categories

# Filled by `new_chunks_sensor` (and the demo) from the manifest: one key per chunk tar, `arXiv_src_2301_004`.
chunk_partitions = dg.DynamicPartitionsDefinition(name="chunk")

# OAI-PMH datestamps have day granularity; arXiv's OAI records start in 2007.
metadata_days = dg.DailyPartitionsDefinition(start_date="2007-05-23")

# The active arXiv categories (about 155), static so backfills can pick them in the UI.
category_partitions = dg.StaticPartitionsDefinition(sorted(active_categories()))

# Text-model fields (cs, math, physics, astro-ph, cond-mat, hep, ...).
field_partitions = dg.StaticPartitionsDefinition(list(FIELDS))
