"""Publishing the lake: the Hugging Face dataset card at its root and a figure browser per category."""

from pathlib import Path

import dagster as dg

from assets.metadata_values import md_table
from assets.partitions import category_partitions
from assets.resources import DataLake

_ALL_CHUNKS = dg.AllPartitionMapping()


def _link(store, key: str) -> dg.MetadataValue:
    """A clickable file:// link for a local lake; the s3:// URI otherwise (no public URL to give)."""
    return dg.MetadataValue.url(Path(store.path(key)).as_uri()) if store.is_local else dg.MetadataValue.path(store.uri(key))


@dg.asset(
    group_name="publish",
    deps=[dg.AssetDep(t, partition_mapping=_ALL_CHUNKS) for t in ("figures", "papers", "text")],
    kinds={"huggingface"},
)
def dataset_card(context: dg.AssetExecutionContext, lake: DataLake) -> dg.MaterializeResult:
    """`README.md` at the data root: a Hugging Face dataset card (configs figures/papers/text, features,
    licence, category and kind counts), so `datasets.load_dataset(DATA_ROOT)` loads the figures."""
    from pipeline.dataset.card import write_card
    from pipeline.errors import UserError

    store = lake.lake()
    try:
        s = write_card(store)
    except UserError as exc:
        raise dg.Failure(str(exc)) from None
    return dg.MaterializeResult(metadata={
        "card": _link(store, s.key), "figures": s.figures, "images": s.images, "papers": s.papers,
        "text_rows": s.text_rows, "configs": ", ".join(s.configs),
        "licences": dg.MetadataValue.md(md_table([{"licence": k, "figures": v} for k, v in s.licences.items()])),
        "text": dg.MetadataValue.md(s.text.split("\n---\n", 1)[-1]),  # the body, without the YAML header
    })


class GalleryConfig(dg.Config):
    limit: int = 5000  # newest figures on the page


@dg.asset(
    group_name="publish",
    partitions_def=category_partitions,
    deps=[dg.AssetDep("figures", partition_mapping=_ALL_CHUNKS)],
    kinds={"html"},
)
def figure_gallery(context: dg.AssetExecutionContext, config: GalleryConfig, lake: DataLake) -> dg.MaterializeResult:
    """A static page of one category's figures on the lake (`gallery/<category>/index.html`): thumbnails,
    captions, filters by kind and licence, links to arXiv. Rebuilds write only new thumbnails."""
    from pipeline.dataset.gallery import build_gallery
    from pipeline.errors import UserError

    store = lake.lake()
    try:
        s = build_gallery(store, context.partition_key, limit=config.limit)
    except UserError as exc:
        raise dg.Failure(str(exc)) from None
    return dg.MaterializeResult(metadata={
        "page": _link(store, s.key), "figures_shown": s.shown, "figures_total": s.total,
        "thumbs_written": s.thumbs_written, "thumbs_removed": s.thumbs_removed, "bad_images": s.bad_images,
        "kinds": dg.MetadataValue.md(md_table([{"figure_kind": k, "figures": v} for k, v in s.kinds.items()])),
    })
