"""Data-quality checks, computed by reading back what an asset wrote (not from its own counters).

They run inside the asset that writes the data (declared as `check_specs`), so each check result belongs
to the partition just written.
"""

import io
import json
import math

import dagster as dg

MAX_ERROR_RATE = 0.2  # share of a chunk's papers that may end in status=error before the check fails
MIN_CAPTION_RATE = 0.8  # share of figure rows that must have a caption

EXTRACTION_CHECKS = [
    dg.AssetCheckSpec("papers_complete", asset="papers",
                      description="The chunk has exactly one papers row for every paper the manifest lists (an "
                                  "empty or truncated chunk fails), and at least one."),
    dg.AssetCheckSpec("figures_complete", asset="figures",
                      description="The chunk's figures files hold every figure row and image its papers rows count "
                                  "(n_graphics, n_images): a missing or truncated figures file fails."),
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

    papers = dataset(lake, "papers", chunk=chunk).to_table(columns=["paper_id", "status", "n_graphics", "n_images"])
    statuses = papers.column("status").to_pylist()
    ids = papers.column("paper_id").to_pylist()
    duplicates = len(ids) - len(set(ids))
    errors = statuses.count("error")
    rate = errors / max(len(statuses), 1)
    results = [dg.AssetCheckResult(
        check_name="papers_complete", asset_key="papers",
        passed=len(statuses) > 0 and not duplicates and (expected_papers is None or len(statuses) == expected_papers),
        metadata={"papers": len(statuses), "expected": expected_papers if expected_papers is not None else -1,
                  "missing": max(0, (expected_papers or 0) - len(set(ids))), "duplicate_rows": duplicates},
    ), dg.AssetCheckResult(
        check_name="error_rate_below_threshold", asset_key="papers",
        passed=bool(statuses) and rate <= MAX_ERROR_RATE,
        metadata={"error_rate": rate, "errors": errors, "papers": len(statuses)},
    )]
    fig_ds = dataset(lake, "figures", chunk=chunk)
    figs = fig_ds.to_table(columns=["figure_id", "caption_text", "image"])
    want_rows = sum(papers.column("n_graphics").fill_null(0).to_pylist())
    want_images = sum(papers.column("n_images").fill_null(0).to_pylist())
    have_images = figs.num_rows - figs.column("image").null_count
    results.append(dg.AssetCheckResult(
        check_name="figures_complete", asset_key="figures",
        passed=figs.num_rows == want_rows and have_images == want_images,
        metadata={"figure_rows": figs.num_rows, "expected_rows": want_rows, "images": have_images,
                  "expected_images": want_images},
    ))
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


SHARD_CHECK = dg.AssetCheckSpec(
    "shard_complete", asset="category_figures",
    description="The shard holds every figure of the category that has a stored image (after the licence "
                "filter, up to max_images), counted from the figures files and the shard's parts on the lake.")


def shard_check(lake, category: str) -> dg.AssetCheckResult:
    """Fails when the category's shard holds fewer images than its figures with images (a part missing or
    short, an image that did not decode); names the chunks whose parts to rebuild."""
    from pipeline.dataset.shards import shard_report

    r = shard_report(lake, category)
    short = "\n".join(f"{c}: {v['shard_images']} of {v['figures_with_images']}" for c, v in r["short_chunks"].items())
    return dg.AssetCheckResult(
        check_name="shard_complete", asset_key="category_figures", passed=r["complete"],
        metadata={"figures_with_images": r["figures_with_images"], "shard_images": r["shard_images"],
                  "expected": r["expected"], "usable": r["usable"],
                  "max_images": r["max_images"] if r["max_images"] is not None else -1,
                  "licenses": ", ".join(r["licenses"] or []) or "all", "short_chunks": short or "none"},
    )


# What each training asset's metrics.json must hold, as finite numbers (nested keys joined by "_").
REQUIRED_METRICS = {
    "gan": ("final_d_loss", "final_g_loss"),
    "vae": ("final_train_bits_per_dim",),
    "lstm": ("train_loss", "valid_loss", "valid_perplexity", "valid_bpc"),
}


def metrics_check_spec(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        "metrics_valid", asset=asset,
        description="metrics.json is on the lake beside the checkpoint, its key metrics are there and no "
                    "metric is NaN or infinite (a diverged run fails here).")


def _leaves(value, prefix: str = "") -> dict:
    out = {}
    for k, v in value.items():
        if k == "config":
            continue
        if isinstance(v, dict):
            out.update(_leaves(v, f"{prefix}{k}_"))
        else:
            out[f"{prefix}{k}"] = v
    return out


def metrics_check(lake, kind: str, partition: str, asset: str, required: tuple[str, ...] = ()) -> dg.AssetCheckResult:
    """Reads `models/<kind>/<partition>/metrics.json` back from the lake. Fails when it is missing or not a
    JSON object, when a required metric (REQUIRED_METRICS[kind] + `required`) is absent or null (NaN is
    written as null), or when any metric is NaN or infinite."""
    key = f"models/{kind}/{partition}/metrics.json"
    need = (*REQUIRED_METRICS[kind], *required)
    problem, missing, null, bad = None, [], [], []
    try:
        metrics = json.loads(lake.read_bytes(key).decode("utf-8"))
        if not isinstance(metrics, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        problem = "missing"
    except (ValueError, UnicodeDecodeError) as exc:
        problem = f"unreadable: {exc}"
    else:
        flat = _leaves(metrics)
        missing = [k for k in need if k not in flat]
        null = [k for k in need if k in flat and flat[k] is None]
        bad = sorted(k for k, v in flat.items() if isinstance(v, float) and not math.isfinite(v))
    return dg.AssetCheckResult(
        check_name="metrics_valid", asset_key=asset, passed=problem is None and not (missing or null or bad),
        metadata={"metrics_json": lake.uri(key), "file": problem or "ok", "missing": ", ".join(missing) or "none",
                  "null": ", ".join(null) or "none", "not_finite": ", ".join(bad) or "none"},
    )
