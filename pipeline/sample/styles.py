"""Per-category look of the sample figures: palettes, backgrounds, fonts and which figure types occur.

The sample bucket is also training data for per-category conditional models, so categories must differ
visibly (astro images are dark, q-bio is green, math is monochrome serif ...) and figure types must differ
within a category (a bar chart never looks like a block diagram).
"""

import dataclasses

# Sub-kinds drawn by pipeline.sample.figures, mapped to the coarse `figure_kind` label of the figures table.
SUBKIND_TO_KIND = {
    "line": "plot",
    "scatter": "plot",
    "bar": "plot",
    "heatmap": "plot",
    "block": "diagram",
    "network": "diagram",
    "photo": "photo",
    "table": "table",
}
RASTER_SUBKINDS = frozenset({"photo"})  # drawn with numpy/Pillow, saved only as PNG/JPEG


@dataclasses.dataclass(frozen=True)
class Style:
    background: str  # axes/figure face colour
    foreground: str  # text, spines, arrows
    palette: tuple[str, ...]  # line/bar/node colours, in order
    cmap: str  # heatmaps and photo tints
    font: str  # "DejaVu Sans" or "DejaVu Serif" (ship with matplotlib: no font lookups on disk)
    grid: bool
    photo: str  # photo-like raster flavour: natural, sky, grains, cells
    kinds: dict[str, float]  # sub-kind -> relative frequency in this category


STYLES: dict[str, Style] = {
    "cs.CV": Style("#ffffff", "#222222", ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"), "viridis",
                   "DejaVu Sans", True, "natural",
                   {"photo": 5, "block": 2.5, "line": 1.5, "bar": 1.5, "heatmap": 1, "table": 1}),
    "cs.LG": Style("#ffffff", "#1a1a2e", ("#3a0ca3", "#4361ee", "#4cc9f0", "#f72585", "#7209b7"), "magma",
                   "DejaVu Sans", True, "natural",
                   {"line": 3.5, "block": 2.5, "bar": 1.5, "scatter": 1.5, "heatmap": 1, "table": 1}),
    "cs.CL": Style("#fbfbf8", "#2b2b2b", ("#e76f51", "#2a9d8f", "#e9c46a", "#264653", "#f4a261"), "YlOrRd",
                   "DejaVu Sans", False, "natural",
                   {"heatmap": 3, "bar": 2, "block": 2.5, "table": 2, "line": 1}),
    "math.PR": Style("#ffffff", "#000000", ("#000000", "#555555", "#999999", "#333333"), "Greys",
                     "DejaVu Serif", False, "natural",
                     {"line": 4, "scatter": 1.5, "bar": 1.5, "network": 1.5}),
    "math.AP": Style("#ffffff", "#000000", ("#000000", "#1b4f72", "#7b241c", "#555555"), "RdBu_r",
                     "DejaVu Serif", False, "natural",
                     {"line": 3, "heatmap": 3, "network": 1}),
    "astro-ph.GA": Style("#0b0b1a", "#e8e8f0", ("#ffd166", "#ef476f", "#06d6a0", "#118ab2", "#ffffff"), "inferno",
                         "DejaVu Sans", False, "sky",
                         {"photo": 4, "line": 2.5, "scatter": 2, "heatmap": 1.5}),
    "cond-mat.mtrl-sci": Style("#ffffff", "#202020", ("#b5179e", "#f77f00", "#003049", "#d62828", "#fcbf49"),
                               "coolwarm", "DejaVu Sans", True, "grains",
                               {"line": 3, "heatmap": 2, "photo": 3, "scatter": 1.5, "table": 1}),
    "q-bio.NC": Style("#f6fbf4", "#1b3a1b", ("#2d6a4f", "#40916c", "#95d5b2", "#081c15", "#d8f3dc"), "Greens",
                      "DejaVu Sans", False, "cells",
                      {"network": 3, "line": 2.5, "scatter": 2, "photo": 2.5, "heatmap": 1}),
    "stat.ML": Style("#ffffff", "#333333", ("#66c2a5", "#fc8d62", "#8da0cb", "#e78ac3", "#a6d854"), "PuBu",
                     "DejaVu Sans", True, "natural",
                     {"scatter": 3.5, "line": 2.5, "bar": 1.5, "heatmap": 1.5, "table": 1}),
    "hep-th": Style("#fffdf5", "#000000", ("#000000", "#8b0000", "#00008b", "#006400"), "twilight",
                    "DejaVu Serif", False, "natural",
                    {"line": 3.5, "network": 2.5, "heatmap": 1.5}),
}

# Cross-lists: plausible secondary categories per primary (the metadata lists primary first).
CROSS_LISTS: dict[str, tuple[str, ...]] = {
    "cs.CV": ("cs.LG", "cs.AI", "eess.IV"),
    "cs.LG": ("stat.ML", "cs.AI", "math.OC"),
    "cs.CL": ("cs.AI", "cs.LG"),
    "math.PR": ("math.ST", "math-ph", "math.MP"),
    "math.AP": ("math.NA", "math-ph", "math.MP"),
    "astro-ph.GA": ("astro-ph.CO", "astro-ph.SR"),
    "cond-mat.mtrl-sci": ("cond-mat.str-el", "physics.comp-ph"),
    "q-bio.NC": ("q-bio.QM", "cs.NE"),
    "stat.ML": ("cs.LG", "stat.ME"),
    "hep-th": ("gr-qc", "hep-ph", "math-ph"),
}

# Relative frequency of primary categories among the sample papers.
CATEGORY_WEIGHTS: dict[str, float] = {
    "cs.CV": 1.6, "cs.LG": 1.6, "cs.CL": 1.2, "math.PR": 0.9, "math.AP": 0.8,
    "astro-ph.GA": 1.0, "cond-mat.mtrl-sci": 0.9, "q-bio.NC": 0.8, "stat.ML": 0.9, "hep-th": 0.9,
}

# Old-style ids (before 2007-04) name the archive: math/0601001 -> archive "math".
OLD_ARCHIVE = {
    "cs.CV": "cs", "cs.LG": "cs", "cs.CL": "cs", "math.PR": "math", "math.AP": "math",
    "astro-ph.GA": "astro-ph", "cond-mat.mtrl-sci": "cond-mat", "q-bio.NC": "q-bio", "hep-th": "hep-th",
}
# stat.ML did not exist in 2006; everything else had an archive then.
OLD_CATEGORIES = tuple(c for c in CATEGORY_WEIGHTS if c in OLD_ARCHIVE)

# Section kinds a figure can sit in, with the sub-kinds that tend to appear there (method -> diagrams).
SECTION_BIAS: dict[str, dict[str, float]] = {
    "intro": {"photo": 2.0, "block": 1.5, "network": 1.5},
    "method": {"block": 3.0, "network": 2.5, "photo": 0.6},
    "results": {"line": 2.0, "bar": 2.0, "scatter": 1.8, "heatmap": 1.5, "table": 2.0, "block": 0.3},
    "appendix": {"line": 1.5, "heatmap": 1.5, "table": 1.5},
    "discussion": {"line": 1.0},
    "background": {"network": 1.2, "block": 1.2},
}

