"""Data-quality checks, computed by reading back what an asset wrote (not from its own counters).

They run inside the asset that writes the data (declared as `check_specs`), so each check result belongs
to the partition just written.
"""

import io

import dagster as dg

MAX_ERROR_RATE = 0.2  # share of a chunk's papers that may end in status=error before the check fails
MIN_CAPTION_RATE = 0.8  # share of figure rows that must have a caption

EXTRACTION_CHECKS = [
    dg.AssetCheckSpec("papers_complete", asset="papers",
                      description="The chunk has a papers row for every paper the manifest lists, and at least one."),
    dg.AssetCheckSpec("error_rate_below_threshold", asset="papers",
                      description=f"At most {MAX_ERROR_RATE:.0%} of the chunk's papers end in status=error."),
    dg.AssetCheckSpec("images_decode", asset="figures", description="Every stored PNG of the chunk decodes."),
    dg.AssetCheckSpec("captions_present", asset="figures",
                      description=f"At least {MIN_CAPTION_RATE:.0%} of the chunk's figure rows have a caption."),
    dg.AssetCheckSpec("schema_stable", asset="figures",
                      description="The chunk's figures files have exactly the declared schema."),
]


def extraction_checks(lake, chunk: str, expected_papers: int | None = None) -> list[dg.AssetCheckResult]:
    import pyarrow.parquet as pq
    from PIL import Image

    from pipeline.dataset.reader import dataset
    from pipeline.dataset.schemas import FIGURES_SCHEMA

    papers = dataset(lake, "papers", chunk=chunk).to_table(columns=["status"])
    statuses = papers.column("status").to_pylist()
    errors = statuses.count("error")
    rate = errors / max(len(statuses), 1)
    results = [dg.AssetCheckResult(
        check_name="papers_complete", asset_key="papers",
        passed=len(statuses) > 0 and (expected_papers is None or len(statuses) >= expected_papers),
        metadata={"papers": len(statuses), "expected": expected_papers if expected_papers is not None else -1},
    ), dg.AssetCheckResult(
        check_name="error_rate_below_threshold", asset_key="papers",
        passed=bool(statuses) and rate <= MAX_ERROR_RATE,
        metadata={"error_rate": rate, "errors": errors, "papers": len(statuses)},
    )]
    fig_ds = dataset(lake, "figures", chunk=chunk)
    figs = fig_ds.to_table(columns=["figure_id", "caption_text", "image"])
    bad, checked = [], 0
    for fid, img in zip(figs.column("figure_id").to_pylist(), figs.column("image").to_pylist(), strict=True):
        if img is None:
            continue
        checked += 1
        try:
            with Image.open(io.BytesIO(img["bytes"])) as im:
                im.load()
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a failed check
            bad.append(f"{fid}: {exc}")
    results.append(dg.AssetCheckResult(
        check_name="images_decode", asset_key="figures", passed=not bad,
        metadata={"images_checked": checked, "undecodable": len(bad), "examples": "\n".join(bad[:5])},
    ))
    captions = figs.column("caption_text").to_pylist()
    with_caption = sum(1 for c in captions if c and c.strip())
    cap_rate = with_caption / len(captions) if captions else 1.0
    results.append(dg.AssetCheckResult(
        check_name="captions_present", asset_key="figures", passed=cap_rate >= MIN_CAPTION_RATE,
        severity=dg.AssetCheckSeverity.WARN, metadata={"caption_rate": cap_rate, "rows": len(captions)},
    ))
    # The dataset is opened with the declared schema, so read each file's own footer to compare.
    files = [f for f in getattr(fig_ds, "files", []) if f"chunk={chunk}/" in f]
    missing, changed = set(), set()
    for path in files:
        actual = pq.read_schema(path, filesystem=fig_ds.filesystem)
        for f in FIGURES_SCHEMA:
            if f.name not in actual.names:
                if f.name not in ("primary_category", "chunk"):  # hive columns may live in the path only
                    missing.add(f.name)
            elif not actual.field(f.name).type.equals(f.type):
                changed.add(f.name)
    results.append(dg.AssetCheckResult(
        check_name="schema_stable", asset_key="figures", passed=not missing and not changed,
        metadata={"files": len(files), "missing_columns": ", ".join(sorted(missing)),
                  "changed_types": ", ".join(sorted(changed))},
    ))
    return results


def schema_uniform_check(lake, table: str, asset: str, category: str | None = None) -> dg.AssetCheckResult:
    """Fails when the files a dataset is built from (a category's figures, the text table) do not share one
    schema: some chunks were extracted by another extractor version or lack current columns, so their rows
    read as nulls where others have values. Lists the chunks to extract again (`arxiv-forge extract-chunk`,
    or re-materialise their chunk_extract partitions)."""
    from pipeline.dataset.reader import schema_report

    r = schema_report(lake, table, category=category)
    files = "\n".join(f"{o['file']} (extractor {o['extractor_version']}"
                      + (f"; missing {', '.join(o['missing'])}" if o["missing"] else "")
                      + (f"; retyped {', '.join(o['changed'])}" if o["changed"] else "") + ")"
                      for o in r["outdated"][:50])
    return dg.AssetCheckResult(
        check_name=f"{table}_schema_uniform", asset_key=asset, passed=not r["mixed"],
        metadata={"files": r["files"], "schemas": dg.MetadataValue.json(r["groups"]),
                  "chunks_to_reextract": ", ".join(r["chunks"]) or "none",
                  "outdated_files": files or "none"},
    )
