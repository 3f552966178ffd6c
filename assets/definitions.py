"""The arxiv-forge code location: `dg dev -w workspace.yaml` (or `dagster dev -w workspace.yaml`) loads this."""

import dagster as dg

from assets.datasets import category_figures, field_corpus
from assets.extraction import chunk_extract
from assets.jobs import ALL_JOBS
from assets.publish import dataset_card, figure_gallery
from assets.resources import default_resources
from assets.schedules import ALL_SCHEDULES
from assets.sensors import new_chunks_sensor
from assets.sources import arxiv_manifest, arxiv_metadata, source_chunk
from assets.training import figure_gan, figure_vae, text_lstm

ALL_ASSETS = [arxiv_manifest, source_chunk, arxiv_metadata, chunk_extract, category_figures, field_corpus,
              figure_gan, figure_vae, text_lstm, dataset_card, figure_gallery]


def build_definitions(resources: dict | None = None) -> dg.Definitions:
    """The code location; tests pass their own resources (a temporary bucket and data root)."""
    return dg.Definitions(
        assets=ALL_ASSETS,
        jobs=ALL_JOBS,
        schedules=ALL_SCHEDULES,
        sensors=[new_chunks_sensor],
        resources=resources or default_resources(),
    )


defs = build_definitions()
