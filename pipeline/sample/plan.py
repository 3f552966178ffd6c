"""Which sample papers exist: ids, months, chunks, categories, source formats and planted features.

`plan_papers(n, seed)` is cheap and deterministic; building a paper's bytes (pipeline.sample.papers) only
needs its `PaperPlan`, so papers can be built in any order and in several processes.

Months: one old-style month (0601: ids like math/0601001, stored as `0601/math0601001.gz`) and two
new-style months (2301, 2302: ids like 2301.00001). Members of a month are sorted by name and cut into
consecutive chunks, as arXiv's tars are.
"""

import dataclasses
import math

import numpy as np

from pipeline.sample.styles import CATEGORY_WEIGHTS, CROSS_LISTS, OLD_ARCHIVE, OLD_CATEGORIES

OLD_MONTH = "0601"
NEW_MONTHS = ("2301", "2302")
MIN_PAPERS = 3  # one per month

# Papers that must exist whatever N is (as long as N allows): each is one paper with these features.
# Optional constraint: "old" / "new" month, or a required primary category.
SPECIALS: list[tuple[tuple[str, ...], str | None]] = [
    (("format:tex", "tikz"), None),
    (("format:tex", "missing_graphic"), "old"),
    (("format:pdf",), None),
    (("format:withdrawn",), None),
    (("format:ps",), "old"),
    (("format:html",), None),
    (("hostile_paths", "dotslash"), "new"),
    (("hostile_links", "appledouble"), "new"),
    (("format:bomb",), "new"),
    (("hostile_images",), "new"),
    (("latin1", "caption_short"), "math.AP"),
    (("readme00", "draft_tex", "appledouble"), "cs.CL"),
    (("input_tree", "graphicspath", "noext"), "cs.CV"),
    (("graphicspath_nowhere", "split_options"), "new"),
    (("macros", "figmacro", "changes"), "cs.LG"),
    (("deadcode",), "new"),
    (("subcaption", "figure_star"), "cs.CV"),
    (("subfloat", "wrapfigure"), "new"),
    (("subfigure_old", "caption_first", "label_in_caption"), "old"),
    (("aastex",), "astro-ph.GA"),
    (("epsfig",), "old"),
    (("pdfpng", "noext"), "new"),
    (("case_mismatch", "odd_names"), "new"),
    (("exotic_images",), "new"),
    (("no_figures",), None),
    (("captionof", "sideways", "missing_graphic"), "new"),
    (("tikz", "input_tree"), "math.PR"),
]

# Features ordinary tar papers get at random (probability each).
RANDOM_FEATURES = {
    "noext": 0.3, "graphicspath": 0.3, "input_tree": 0.2, "figure_star": 0.15, "caption_short": 0.1,
    "label_in_caption": 0.15, "caption_first": 0.05, "subcaption": 0.12, "subfloat": 0.04, "macros": 0.12,
    "deadcode": 0.08, "appledouble": 0.05, "tikz": 0.05, "missing_graphic": 0.03, "rgba": 0.1,
    "pdfpng": 0.05, "wrapfigure": 0.04, "junk_images": 0.3, "bib_file": 0.3,
}
RANDOM_FORMATS = {"format:tex": 0.05, "format:pdf": 0.03, "format:withdrawn": 0.02}


@dataclasses.dataclass(frozen=True)
class PaperPlan:
    index: int  # position in the whole bucket (chunk order)
    paper_id: str  # "math/0601001", "2301.00001"
    stem: str  # file stem in the chunk: "math0601001", "2301.00001"
    yymm: str
    chunk: str  # "arXiv_src_0601_001"
    seq_num: int  # chunk number within the month
    number: int  # running number within the month (0-based), orders the submission dates
    month_size: int
    primary: str
    categories: tuple[str, ...]
    features: tuple[str, ...]
    seed: int

    @property
    def source_format(self) -> str:
        for f in self.features:
            if f.startswith("format:"):
                return f.split(":", 1)[1]
        return "tar"

    @property
    def member(self) -> str:
        ext = ".pdf" if self.source_format == "pdf" else ".gz"
        return f"{self.yymm}/{self.stem}{ext}"

    @property
    def old_style(self) -> bool:
        return "/" in self.paper_id


@dataclasses.dataclass
class _Slot:
    yymm: str
    primary: str
    features: set[str]
    special: bool = False


def _weighted(rng, weights: dict[str, float], keys=None) -> str:
    keys = list(keys if keys is not None else weights)
    p = np.array([weights[k] for k in keys], float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _month_sizes(n: int) -> dict[str, int]:
    old = max(1, round(0.2 * n))
    first = (n - old) // 2
    return {OLD_MONTH: old, NEW_MONTHS[0]: first, NEW_MONTHS[1]: n - old - first}


def _chunks_for(yymm: str, count: int) -> int:
    if yymm == OLD_MONTH:
        return max(1, min(2, math.ceil(count / 40)))
    return max(1, min(3, max(2 if count >= 2 else 1, math.ceil(count / 50))))


def plan_papers(n: int, seed: int = 0) -> list[PaperPlan]:
    """The sample bucket's papers in chunk order (months chronological, members sorted within a chunk)."""
    if n < MIN_PAPERS:
        raise ValueError(f"need at least {MIN_PAPERS} papers (one per month), got {n}")
    rng = np.random.default_rng([seed, 7919])
    slots: list[_Slot] = []
    for yymm, count in _month_sizes(n).items():
        cats = OLD_CATEGORIES if yymm == OLD_MONTH else list(CATEGORY_WEIGHTS)
        slots += [_Slot(yymm, _weighted(rng, CATEGORY_WEIGHTS, cats), set()) for _ in range(count)]
    _place_specials(slots, rng)
    for slot in slots:
        if not slot.special:
            slot.features = _random_features(rng, slot.yymm)
    return _assign_ids(slots, rng, seed)


def _place_specials(slots: list[_Slot], rng) -> None:
    for features, constraint in SPECIALS:
        free = [i for i, s in enumerate(slots) if not s.special]
        if constraint == "old":
            free = [i for i in free if slots[i].yymm == OLD_MONTH]
        elif constraint == "new" or (constraint and constraint not in OLD_ARCHIVE):
            free = [i for i in free if slots[i].yymm != OLD_MONTH]
        if not free:
            continue  # N too small for this one; the rest still get placed
        slot = slots[free[int(rng.integers(len(free)))]]
        slot.special = True
        slot.features = set(features)
        if constraint and constraint not in ("old", "new"):
            slot.primary = constraint


def _random_features(rng, yymm: str) -> set[str]:
    roll = rng.random()
    acc = 0.0
    for fmt, p in RANDOM_FORMATS.items():
        acc += p
        if roll < acc:
            return {fmt} | ({"tikz"} if fmt == "format:tex" and rng.random() < 0.5 else set())
    feats = {f for f, p in RANDOM_FEATURES.items() if rng.random() < p}
    if yymm == OLD_MONTH:  # 2006: EPS figures, dvips-era packages
        feats -= {"subcaption", "rgba", "pdfpng"}
        if rng.random() < 0.5:
            feats.add("epsfig")
    return feats


def _assign_ids(slots: list[_Slot], rng, seed: int) -> list[PaperPlan]:
    plans: list[PaperPlan] = []
    by_month: dict[str, list[_Slot]] = {}
    for s in slots:
        by_month.setdefault(s.yymm, []).append(s)
    index = 0
    for yymm in (OLD_MONTH, *NEW_MONTHS):
        month = by_month.get(yymm, [])
        named = []
        counters: dict[str, int] = {}
        for i, s in enumerate(month):
            if yymm == OLD_MONTH:
                archive = OLD_ARCHIVE[s.primary]
                counters[archive] = counters.get(archive, 0) + 1
                num = f"{yymm}{counters[archive]:03d}"
                named.append((f"{archive}{num}", f"{archive}/{num}", s))
            else:
                pid = f"{yymm}.{i + 1:05d}"
                named.append((pid, pid, s))
        named.sort(key=lambda t: t[0])
        k = _chunks_for(yymm, len(named))
        per = math.ceil(len(named) / k) if named else 0
        for pos, (stem, pid, s) in enumerate(named):
            seq = pos // per + 1
            secondary = [c for c in CROSS_LISTS[s.primary] if rng.random() < 0.3][:2]
            plans.append(PaperPlan(
                index=index, paper_id=pid, stem=stem, yymm=yymm, chunk=f"arXiv_src_{yymm}_{seq:03d}",
                seq_num=seq, number=pos, month_size=len(named), primary=s.primary,
                categories=(s.primary, *secondary), features=tuple(sorted(s.features)),
                seed=int(np.random.SeedSequence([seed, index]).generate_state(1)[0]),
            ))
            index += 1
    return plans
