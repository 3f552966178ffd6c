"""A figure browser: one static HTML page per category, with thumbnails, captions and filters.

    <prefix>/index.html           the page: figure data as JSON inside it, rendered by plain JS
    <prefix>/thumbs/<sha>.jpg     one small JPEG per distinct image (named by the PNG's SHA-256)

The asset writes `gallery/<category>/` on the lake; `arxiv-forge gallery --out DIR` writes the same to
a local folder. The page needs no server and no network (opens from file://): filters by figure kind
and licence and a caption search, kept in the URL's #hash so a filtered view can be linked; each
thumbnail links to the paper on arXiv. For speed with thousands of figures the page draws cards in
batches as you scroll, thumbnails load lazily, and a rebuild writes only thumbnails it does not have.
"""

import hashlib
import html
import io
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow.parquet as pq
from PIL import Image

from pipeline.dataset.card import licence_id
from pipeline.dataset.lake import Lake, as_lake
from pipeline.dataset.reader import categories, chunk_files
from pipeline.errors import UserError

log = logging.getLogger(__name__)

THUMB_PX = 240  # long side; cards are ~220 px wide
DEFAULT_LIMIT = 5000  # newest figures shown per category: keeps the page's embedded data a few MB
_COLUMNS = ("figure_id", "paper_id", "figure_kind", "caption_text", "image", "image_sha256", "width", "height",
            "license", "duplicate_of")


@dataclass
class GallerySummary:
    category: str
    page: str  # the page's URI (local path or s3://...)
    key: str  # the page's key in the output lake
    shown: int = 0
    total: int = 0  # figures with an image in the category (duplicates excluded)
    thumbs_written: int = 0
    thumbs_removed: int = 0
    bad_images: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


def _chunk_order(chunk: str) -> str:
    """Sort key for newest-first: arXiv_src_YYMM_NNN with 91..99 in the 1900s."""
    parts = chunk.split("_")
    yymm = parts[2] if len(parts) > 3 else "0000"
    return ("19" if yymm >= "91" else "20") + yymm + "_" + parts[-1]


def thumbnail(png: bytes, px: int = THUMB_PX) -> tuple[bytes, int, int]:
    """A JPEG no larger than px on its long side, on white; returns (bytes, width, height)."""
    with Image.open(io.BytesIO(png)) as im:
        im = im.convert("RGB")
        im.thumbnail((px, px), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=82, optimize=True)
        return buf.getvalue(), im.width, im.height


def _fit(width: int | None, height: int | None, px: int = THUMB_PX) -> tuple[int, int] | None:
    """The thumbnail's size from the stored image's (what `thumbnail` makes, give or take a pixel)."""
    if not width or not height:
        return None
    scale = min(1.0, px / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _rows(lake: Lake, category: str, metadata_licences: dict[str, str | None]):
    """The category's figures with an image, newest chunk first, one row group in memory at a time."""
    files = chunk_files(lake, f"figures/primary_category={category}")
    for chunk in sorted(files, key=_chunk_order, reverse=True):
        with lake.fs.open_input_file(lake.path(files[chunk].key)) as fh:
            pf = pq.ParquetFile(fh)
            cols = [c for c in _COLUMNS if c in pf.schema_arrow.names]  # older files lack the newer columns
            for i in range(pf.num_row_groups):
                for row in pf.read_row_group(i, columns=cols).to_pylist():
                    if row.get("duplicate_of") or not (row.get("image") or {}).get("bytes"):
                        continue
                    lic = row.get("license") or metadata_licences.get(row["paper_id"])
                    row["licence"] = licence_id(lic)
                    yield row


def _count_images(lake: Lake, category: str) -> int:
    """Figures with an image, not duplicates, from two small columns (image_sha256 is set iff image is)."""
    files = chunk_files(lake, f"figures/primary_category={category}")
    n = 0
    for f in files.values():
        with lake.fs.open_input_file(lake.path(f.key)) as fh:
            pf = pq.ParquetFile(fh)
            cols = [c for c in ("image_sha256", "duplicate_of") if c in pf.schema_arrow.names]
            t = pf.read(columns=cols)
            dup = t.column("duplicate_of").to_pylist() if "duplicate_of" in cols else [None] * len(t)
            n += sum(1 for sha, d in zip(t.column("image_sha256").to_pylist(), dup, strict=True) if sha and not d)
    return n


def _metadata_licences(lake: Lake) -> dict[str, str | None]:
    from pipeline.dataset.metadata import read_metadata

    meta = read_metadata(lake, columns=["id", "license"])
    return dict(zip(meta.column("id").to_pylist(), meta.column("license").to_pylist(), strict=True))


def build_gallery(lake: Lake | str, category: str, out: Lake | str | None = None, prefix: str | None = None, *,
                  limit: int = DEFAULT_LIMIT) -> GallerySummary:
    """Write the category's page and thumbnails to `out` (default: the lake itself) under `prefix`
    (default `gallery/<category>`). Thumbnails are written before the page, so the page never names a
    missing one; thumbnails no longer named are removed afterwards."""
    lake = as_lake(lake)
    out = lake if out is None else as_lake(out)
    prefix = (prefix if prefix is not None else f"gallery/{category}").strip("/")
    key = f"{prefix}/index.html" if prefix else "index.html"
    thumbs_dir = f"{prefix}/thumbs" if prefix else "thumbs"
    if category not in categories(lake):
        known = ", ".join(categories(lake)) or "none yet (run arxiv-forge extract-chunk first)"
        raise UserError(f"no figures for category {category!r} under {lake.uri('figures')}; categories: {known}")

    s = GallerySummary(category=category, page=out.uri(key), key=key)
    existing = {f.key.rsplit("/", 1)[-1] for f in out.files(thumbs_dir)}
    licences = _metadata_licences(lake)
    figures, written, writes = [], set(), []
    # One PUT per thumbnail: threads hide S3's latency; a local folder needs none.
    with ThreadPoolExecutor(max_workers=1 if out.is_local else 16) as pool:
        for row in _rows(lake, category, licences):
            if len(figures) >= limit:  # capped: count the rest from small columns instead of reading images
                s.total = _count_images(lake, category)
                break
            s.total += 1
            png = row["image"]["bytes"]
            name = (row.get("image_sha256") or hashlib.sha256(png).hexdigest())[:24] + ".jpg"
            size = _fit(row.get("width"), row.get("height"))
            have = name in existing or name in written
            if not have or size is None:  # a rebuild decodes only new images
                try:
                    data, *size = thumbnail(png)
                except Exception as exc:  # noqa: BLE001 - a bad image loses its card, not the page
                    log.warning("%s: image not decodable (%s)", row["figure_id"], exc)
                    s.bad_images += 1
                    continue
                if not have:
                    writes.append(pool.submit(out.write_bytes, f"{thumbs_dir}/{name}", data))
                    written.add(name)
            kind = row.get("figure_kind") or "other"
            s.kinds[kind] = s.kinds.get(kind, 0) + 1
            figures.append({"id": row["figure_id"], "paper": row["paper_id"], "kind": kind,
                            "licence": row["licence"], "caption": row.get("caption_text") or "",
                            "thumb": f"thumbs/{name}", "w": size[0], "h": size[1]})
    for w in writes:
        w.result()  # a failed write fails the build before the page is written
    s.thumbs_written = len(written)
    s.shown = len(figures)
    out.write_bytes(key, render_page(category, figures, s.total).encode("utf-8"))
    used = {f["thumb"].rsplit("/", 1)[-1] for f in figures}
    for name in sorted(existing - used):
        out.delete(f"{thumbs_dir}/{name}")
        s.thumbs_removed += 1
    return s


def render_page(category: str, figures: list[dict], total: int) -> str:
    # JSON inside <script>: escaping <, > and & keeps a caption holding "</script>" from ending the block.
    data = json.dumps({"category": category, "total": total, "figures": figures}, ensure_ascii=False,
                      separators=(",", ":"))
    data = data.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return _PAGE.replace("{{TITLE}}", html.escape(f"{category} figures")).replace("{{DATA}}", data)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{TITLE}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f4f5;color:#18181b}
header{position:sticky;top:0;z-index:1;background:#fff;border-bottom:1px solid #ddd;padding:10px 16px;
  display:flex;flex-wrap:wrap;gap:12px;align-items:center}
h1{font-size:18px;margin:0 12px 0 0}
select,input{font:inherit;padding:3px 6px}
#count{color:#555}
#grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:12px;padding:16px}
.card{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;overflow:hidden;display:flex;
  flex-direction:column}
.card a.thumb{display:flex;align-items:center;justify-content:center;height:180px;background:#fff}
.card img{max-width:100%;max-height:180px;object-fit:contain}
.card figcaption{padding:6px 8px;border-top:1px solid #eee;font-size:12px}
.cap{display:-webkit-box;-webkit-line-clamp:4;-webkit-box-orient:vertical;overflow:hidden;margin:4px 0 0}
.tag{display:inline-block;background:#eef;border-radius:3px;padding:0 4px;margin-right:4px;font-size:11px}
.tag.lic{background:#efe}
#more{display:block;margin:0 auto 24px;padding:6px 16px}
</style></head>
<body>
<header>
  <h1>{{TITLE}}</h1>
  <label>kind <select id="kind"><option value="">all</option></select></label>
  <label>licence <select id="licence"><option value="">all</option></select></label>
  <input id="q" type="search" placeholder="search captions">
  <span id="count"></span>
</header>
<main id="grid"></main>
<button id="more" hidden>show more</button>
<script type="application/json" id="data">{{DATA}}</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("data").textContent);
const BATCH = 500;  // cards added per step: the DOM stays small however many figures the page holds
const $ = (id) => document.getElementById(id);
const grid = $("grid"), more = $("more"), kindSel = $("kind"), licSel = $("licence"), q = $("q");
let matches = [], shown = 0;

function fillOptions(select, key) {
  const counts = {};
  for (const f of DATA.figures) counts[f[key]] = (counts[f[key]] || 0) + 1;
  for (const v of Object.keys(counts).sort()) select.add(new Option(`${v} (${counts[v]})`, v));
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;  // captions are text, never HTML
  return e;
}

function card(f) {
  const fig = el("figure", "card");
  const a = el("a", "thumb");
  a.href = "https://arxiv.org/abs/" + f.paper;
  a.target = "_blank";
  a.rel = "noopener";
  const img = el("img");
  img.loading = "lazy";
  img.src = f.thumb;
  img.width = f.w;
  img.height = f.h;
  img.alt = f.caption.slice(0, 200);
  a.append(img);
  const cap = el("figcaption");
  const link = el("a", null, f.id);
  link.href = a.href;
  cap.append(link, " ", el("span", "tag", f.kind), el("span", "tag lic", f.licence), el("p", "cap", f.caption));
  cap.title = f.caption;
  fig.append(a, cap);
  return fig;
}

function readHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  kindSel.value = h.get("kind") || "";
  licSel.value = h.get("licence") || "";
  q.value = h.get("q") || "";
}

function writeHash() {
  const h = new URLSearchParams();
  if (kindSel.value) h.set("kind", kindSel.value);
  if (licSel.value) h.set("licence", licSel.value);
  if (q.value) h.set("q", q.value);
  history.replaceState(null, "", "#" + h.toString());
}

function showMore() {
  const frag = document.createDocumentFragment();
  for (const f of matches.slice(shown, shown + BATCH)) frag.append(card(f));
  grid.append(frag);
  shown = Math.min(shown + BATCH, matches.length);
  more.hidden = shown >= matches.length;
}

function apply() {
  const kind = kindSel.value, lic = licSel.value, words = q.value.toLowerCase().split(/\\s+/).filter(Boolean);
  matches = DATA.figures.filter((f) => (!kind || f.kind === kind) && (!lic || f.licence === lic)
    && words.every((w) => f.caption.toLowerCase().includes(w) || f.id.includes(w)));
  grid.replaceChildren();
  shown = 0;
  showMore();
  const capped = DATA.total > DATA.figures.length ? ` (newest ${DATA.figures.length} of ${DATA.total})` : "";
  $("count").textContent = `${matches.length} figures${capped}`;
}

fillOptions(kindSel, "kind");
fillOptions(licSel, "licence");
readHash();
apply();
for (const input of [kindSel, licSel]) input.addEventListener("change", () => { writeHash(); apply(); });
q.addEventListener("input", () => { writeHash(); apply(); });
window.addEventListener("hashchange", () => { readHash(); apply(); });
more.addEventListener("click", showMore);
// Add the next batch when the button scrolls into view (infinite scroll).
new IntersectionObserver((seen) => { if (seen.some((e) => e.isIntersecting) && !more.hidden) showMore(); })
  .observe(more);
</script>
</body></html>
"""
