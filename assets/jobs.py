"""Jobs: the units the schedules, sensors, backfills and the demo launch."""

import dagster as dg

manifest_job = dg.define_asset_job(
    "manifest_job", selection=dg.AssetSelection.assets("arxiv_manifest"),
    description="Read the bucket's manifest (chunks, sizes, md5s).",
)
metadata_job = dg.define_asset_job(
    "metadata_job", selection=dg.AssetSelection.assets("arxiv_metadata"),
    description="Harvest one day of OAI-PMH metadata into the metadata table.",
)
chunk_job = dg.define_asset_job(
    "chunk_job", selection=dg.AssetSelection.assets("source_chunk", "papers", "figures", "text"),
    description="Fetch one chunk tar (md5-verified) and extract its papers, figures and text.",
    tags={"arxiv-forge/stage": "extract"},  # dagster.yaml limits concurrent extraction runs by this tag
)
category_dataset_job = dg.define_asset_job(
    "category_dataset_job", selection=dg.AssetSelection.assets("category_figures"),
    description="Rebuild one category's training shard from the figures table.",
)
field_dataset_job = dg.define_asset_job(
    "field_dataset_job", selection=dg.AssetSelection.assets("field_corpus"),
    description="Rebuild one field's text corpus from the text table.",
)
category_training_job = dg.define_asset_job(
    "category_training_job",
    selection=dg.AssetSelection.assets("category_figures", "figure_gan", "figure_vae"),
    description="Shard + conditional GAN + conditional VAE for one category (backfill this by category).",
)
field_training_job = dg.define_asset_job(
    "field_training_job", selection=dg.AssetSelection.assets("field_corpus", "text_lstm"),
    description="Corpus + LSTM language model for one field.",
)

ALL_JOBS = [manifest_job, metadata_job, chunk_job, category_dataset_job, field_dataset_job,
            category_training_job, field_training_job]
