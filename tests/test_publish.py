"""Dataset card and figure browser on a real lake: the sample bucket extracted by the project's own code, the
card read back by the real `datasets` library (offline), the gallery opened in headless Chromium."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from pipeline.cli import main
from pipeline.dataset.card import build_card, figure_licences, licence_id, write_card
from pipeline.dataset.gallery import build_gallery, render_page
from pipeline.dataset.lake import Lake
from pipeline.dataset.reader import read_figures
from pipeline.dataset.schemas import EXTRACTOR_VERSION

pytest_plugins = ["s3server"]  # moto's threaded S3 server (tests/s3server.py)
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed: `apt-get install chromium` "
                                    "(scripts/setup.sh --test installs it)")


@pytest.fixture(scope="module")
def lake_root(small_sample_bucket, tmp_path_factory) -> Path:
    """The session's 40-paper sample bucket: metadata on the lake, then every chunk extracted."""
    from pipeline.dataset.metadata import records_from_xml, write_metadata
    from pipeline.extract.chunk import extract_chunk, load_metadata_for_chunk

    root = tmp_path_factory.mktemp("publish") / "data"
    lake = Lake(root)
    records, _ = records_from_xml([small_sample_bucket / "metadata"])
    write_metadata(lake, "2024-01-01", records)
    meta = load_metadata_for_chunk(lake)
    for tar in sorted((small_sample_bucket / "src").glob("arXiv_src_*.tar")):
        extract_chunk(tar, lake, workers=2, metadata=meta)
    return root


def _header(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


# --------------------------------------------------------------------------- dataset card


def test_licence_ids_match_the_figures_column():
    assert licence_id("http://creativecommons.org/licenses/by/4.0/") == "CC-BY-4.0"
    assert licence_id("http://arxiv.org/licenses/nonexclusive-distrib/1.0/") == "arXiv-nonexclusive-1.0"
    assert licence_id("CC-BY-4.0") == "CC-BY-4.0"  # already normalised by the extractor
    assert licence_id(None) == licence_id("  ") == "unknown"


def test_a_figures_own_licence_wins_and_missing_ones_are_unknown(tmp_path):
    figs = pa.table({"paper_id": ["a", "b", "c"],
                     "license": ["http://creativecommons.org/licenses/by/4.0/", None, ""]})
    assert figure_licences(Lake(tmp_path), figs) == ["CC-BY-4.0", "unknown", "unknown"]
    assert figure_licences(Lake(tmp_path), figs.drop_columns(["license"])) == ["unknown"] * 3


def test_card_names_the_configs_and_counts_the_lake(lake_root):
    s = write_card(lake_root)
    text = (lake_root / "README.md").read_text()
    head = _header(text)
    configs = {c["config_name"]: c for c in head["configs"]}
    assert list(configs) == ["figures", "papers", "text"] and configs["figures"]["default"] is True
    assert configs["figures"]["data_files"] == [{"split": "train", "path": "figures/*/*/*.parquet"}]
    assert configs["papers"]["data_files"][0]["path"] == "papers/*/*.parquet"
    figures = read_figures(lake_root, columns=["primary_category", "figure_kind"])
    assert s.figures == len(figures) > 0
    # Licences come from the metadata (the sample's new-style papers have one, old-style ones none).
    assert sum(s.licences.values()) == s.figures
    known = set(s.licences) - {"unknown"}
    assert "unknown" in s.licences and known and all(k.startswith(("CC", "arXiv-")) for k in known)
    assert head["license"] == sorted({k.lower() if k.startswith("CC") else "other" for k in s.licences})
    features = {f["name"]: f for f in head["dataset_info"][0]["features"]}
    assert features["image"] == {"name": "image", "dtype": "image"}
    assert features["categories"] == {"name": "categories", "sequence": "string"}
    for cat in set(figures.column("primary_category").to_pylist()):
        assert f"| {cat} |" in text
    for kind in set(figures.column("figure_kind").to_pylist()):
        assert f"| {kind} |" in text
    assert "filter by licence before redistributing" in text and f"Extractor version {EXTRACTOR_VERSION}" in text


def test_card_of_files_without_a_license_column_and_no_metadata_says_unknown(lake_root, tmp_path):
    """Figures written before the licence column existed, on a lake with no metadata harvested."""
    bare = tmp_path / "bare"
    for table in ("figures", "papers", "text"):
        shutil.copytree(lake_root / table, bare / table)
    for path in (bare / "figures").rglob("*.parquet"):
        t = pq.read_table(path)
        pq.write_table(t.drop_columns([c for c in ("license", "duplicate_of") if c in t.column_names]), path)
    text, s = build_card(bare)
    assert s.licences == {"unknown": s.figures} and "| unknown |" in text
    features = {f["name"] for f in _header(text)["dataset_info"][0]["features"]}
    assert "image" in features and "license" not in features  # the card describes the files as they are


def test_load_dataset_picks_the_figures_config_offline(lake_root, tmp_path):
    pytest.importorskip("datasets", reason="`datasets` is a dev dependency: pip install -e '.[dev]'")
    s = write_card(lake_root)
    script = """
import json, sys, datasets
root = sys.argv[1]
figs = datasets.load_dataset(root, split="train")
out = {"figures": figs.num_rows, "image": type(figs.features["image"]).__name__, "columns": figs.column_names,
       "size": list(next(r["image"] for r in figs if r["image"] is not None).size)}
out["papers"] = datasets.load_dataset(root, "papers", split="train").num_rows
out["text"] = datasets.load_dataset(root, "text", split="train").num_rows
print(json.dumps(out))
"""
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "HF_DATASETS_CACHE": str(tmp_path / "hf" / "datasets")}
    proc = subprocess.run([sys.executable, "-c", script, str(lake_root)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["figures"] == s.figures and got["image"] == "Image"
    assert "caption_text" in got["columns"] and max(got["size"]) <= 512
    assert got["papers"] == s.papers and got["text"] == s.text_rows


def test_card_cli(lake_root, tmp_path, capsys):
    assert main(["card", str(lake_root)]) == 0
    assert "README.md" in capsys.readouterr().out
    assert main(["card", str(tmp_path / "nothing")]) == 2
    assert "extract chunks first" in capsys.readouterr().err


# --------------------------------------------------------------------------- figure browser


def _chromium(url: str, tmp_path: Path, *extra: str) -> tuple[str, list[str]]:
    """Chromium's DOM after load, and the page's console lines (JS errors are logged as CONSOLE lines)."""
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         f"--user-data-dir={tmp_path / 'chrome'}", *extra, "--dump-dom", url],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return proc.stdout, console


def _cards(dom: str) -> int:
    return len(re.findall(r'<figure class="card"', dom))


@needs_chromium
def test_gallery_in_headless_chromium(lake_root, tmp_path):
    out = tmp_path / "gallery"
    assert main(["gallery", str(lake_root), "--category", "cs.CV", "--out", str(out)]) == 0
    page = out / "cs.CV" / "index.html"
    figs = [r for r in read_figures(lake_root, category="cs.CV", columns=["figure_kind", "image_sha256"]).to_pylist()
            if r["image_sha256"]]
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', page.read_text(), re.S)[1])
    assert len(data["figures"]) == len(figs) > 0
    assert all((page.parent / f["thumb"]).is_file() for f in data["figures"])
    assert all(f["paper"] in f["id"] for f in data["figures"])

    dom, console = _chromium(page.as_uri(), tmp_path)
    assert console == []
    assert _cards(dom) == len(figs)
    assert f"{len(figs)} figures" in dom
    assert 'href="https://arxiv.org/abs/' in dom
    kind = figs[0]["figure_kind"]
    dom, console = _chromium(page.as_uri() + f"#kind={kind}", tmp_path)
    assert console == [] and _cards(dom) == sum(r["figure_kind"] == kind for r in figs)
    lic = data["figures"][0]["licence"]
    dom, console = _chromium(page.as_uri() + f"#licence={lic}", tmp_path)
    assert console == [] and _cards(dom) == sum(f["licence"] == lic for f in data["figures"])

    shot = tmp_path / "shot.png"
    _chromium(page.as_uri(), tmp_path, f"--screenshot={shot}", "--window-size=1280,900", "--hide-scrollbars")
    with Image.open(shot) as im:  # thumbnails drawn: far more colours than a blank or text-only page
        assert im.size == (1280, 900) and len(im.convert("RGB").getcolors(1 << 20) or []) > 500


@needs_chromium
def test_gallery_page_escapes_captions_and_draws_in_batches(tmp_path):
    thumb = tmp_path / "thumbs" / "t.jpg"
    thumb.parent.mkdir()
    Image.new("RGB", (40, 30), "red").save(thumb)
    hostile = "</script><script>document.title='owned'</script><img src=x onerror=alert(1)> & more"
    figures = [{"id": f"2301.{i:05d}/f1", "paper": f"2301.{i:05d}", "kind": "plot" if i % 3 else "photo",
                "licence": "cc-by-4.0", "caption": hostile, "thumb": "thumbs/t.jpg", "w": 40, "h": 30}
               for i in range(1200)]
    page = tmp_path / "index.html"
    page.write_text(render_page("cs.CV", figures, 1500))
    dom, console = _chromium(page.as_uri(), tmp_path)
    assert console == []
    assert _cards(dom) == 500  # the first batch; more are added on scrolling
    assert "1200 figures (newest 1200 of 1500)" in dom
    assert "<title>cs.CV figures</title>" in dom and '<img src="x"' not in dom  # the caption stayed text
    dom, console = _chromium(page.as_uri() + "#kind=photo", tmp_path)
    assert console == [] and _cards(dom) == 400
    dom, console = _chromium(page.as_uri() + "#q=2301.00010", tmp_path)  # the search box, by figure id
    assert console == [] and _cards(dom) == 1


def test_gallery_rebuild_writes_only_new_thumbnails_and_honours_the_limit(lake_root):
    first = build_gallery(lake_root, "cs.LG")
    assert first.key == "gallery/cs.LG/index.html" and (lake_root / first.key).is_file()
    assert first.shown == first.total and 0 < first.thumbs_written <= first.shown
    again = build_gallery(lake_root, "cs.LG")
    assert again.thumbs_written == 0 and again.thumbs_removed == 0
    capped = build_gallery(lake_root, "cs.LG", limit=2)
    assert capped.shown == 2 and capped.total == first.total
    assert len(list((lake_root / "gallery/cs.LG/thumbs").iterdir())) <= 2


def test_card_and_gallery_on_an_s3_lake(lake_root, s3_bucket, tmp_path):
    for folder in ("figures", "papers", "text", "metadata"):
        s3_bucket.upload(lake_root / folder, f"lake/{folder}")
    lake = Lake(f"s3://{s3_bucket.name}/lake", endpoint_url=s3_bucket.endpoint_url, scratch=tmp_path / "s")
    local = write_card(lake_root)
    s = write_card(lake)
    assert s.uri == f"s3://{s3_bucket.name}/lake/README.md"
    assert lake.read_bytes("README.md").decode() == (lake_root / "README.md").read_text()
    assert (s.figures, s.licences) == (local.figures, local.licences)
    g = build_gallery(lake, "cs.CV")
    page = lake.read_bytes("gallery/cs.CV/index.html").decode()
    assert g.shown > 0 and page.count('"thumb":"thumbs/') == g.shown
    assert len(lake.files("gallery/cs.CV/thumbs")) == g.thumbs_written > 0


def test_gallery_cli_names_the_known_categories(lake_root, capsys):
    assert main(["gallery", str(lake_root), "--category", "cs.XX"]) == 2
    assert "cs.CV" in capsys.readouterr().err


# --------------------------------------------------------------------------- Dagster assets


def test_assets_write_the_card_and_a_gallery(lake_root):
    from assets.publish import dataset_card, figure_gallery
    from assets.resources import DataLake

    resources = {"lake": DataLake(root=str(lake_root))}
    with dg.instance_for_test() as instance:
        card = dg.materialize([dataset_card], resources=resources, instance=instance)
        gallery = dg.materialize([figure_gallery], resources=resources, instance=instance, partition_key="cs.CV")
    assert card.success and gallery.success
    meta = card.asset_materializations_for_node("dataset_card")[0].metadata
    assert meta["card"].value == (lake_root / "README.md").as_uri() and meta["figures"].value > 0
    meta = gallery.asset_materializations_for_node("figure_gallery")[0].metadata
    assert meta["page"].value == (lake_root / "gallery/cs.CV/index.html").as_uri()
    assert meta["figures_shown"].value == meta["figures_total"].value > 0
