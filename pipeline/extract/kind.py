"""Weak labels from source cues: `figure_kind` (plot|diagram|photo|table|tikz|other) and `section_kind`.

figure_kind, first rule that fires:
1. tikz    - every graphic of the figure is a drawing (tikzpicture/pgfpicture/pspicture/picture
             environment, `\\input{*.tikz|*.pgf}`, `\\includestandalone`), or pgfplots is used in it;
2. table   - the figure has a tabular and no image files, or the caption's first cue word is "table";
3. otherwise the caption word that comes first decides, among these groups (whole words, any case):
   photo   - photo, photograph, picture, image, images, snapshot, camera, sample(s), example(s),
             qualitative, micrograph, rendering, frames, scene
             (only when at least one graphic is a raster: png/jpg/gif/tiff/bmp/webp);
   plot    - plot, curve(s), accuracy, loss, vs/versus, histogram, distribution, scatter, bar chart,
             error, performance, function of, spectrum, evolution, comparison, ROC, heatmap, convergence,
             log, fit, trend, time series, dependence, matrix, attention, density, profile, correlation,
             trajectory, runtime, ablation, embedding, results, map, contour, trace, over/in time, path,
             cluster, rate, decay, potential, realisation, and the plot-type phrases "phase diagram",
             "band structure", "colour-magnitude", "raster plot" (which start before their "diagram" word);
   diagram - architecture, diagram, pipeline, overview, framework, flowchart, flow chart, schematic,
             illustration, structure, workflow, block, network, graph, sketch, layout, module;
4. photo   - a JPEG graphic with no cue word (JPEG is almost always photographic);
5. other.
This is a label for conditioning generative models and for filtering, not ground truth: it is right when
captions say what they show, and says "other" rather than guessing when they do not.

section_kind: the kind whose keyword appears first in the section title (introduction, related,
method, experiments, results, discussion, conclusion; "appendix"/"supplementary" always wins), any
figure after `\\appendix` is "appendix", and a title without keywords is "other".
"""

import re

_WORDS = {
    "photo": r"photos?|photographs?|pictures?|images?|snapshots?|camera|samples?|examples?|qualitative|"
             r"micrographs?|renderings?|frames?|scenes?|fluorescence|microscopy",
    "plot": r"plots?|plotted|curves?|accuracy|loss(?:es)?|vs\\.?|versus|histograms?|distributions?|scatter|"
            r"bar ?charts?|errors?|performance|function of|spectr(?:um|a)|evolution|comparison|roc|heat ?maps?|"
            r"convergence|log|fits?|trends?|as a function|time series|dependence|matrix|matrices|attention|"
            r"density|densities|profiles?|correlations?|trajector(?:y|ies)|runtime|ablation|embeddings?|"
            r"phase diagram|colou?r-magnitude|raster plot|results|band structure|maps?|contours?|traces?|"
            r"over time|in time|paths?|clusters?|rates?|decay|potentials?|realis(?:ation|ed)|realiz(?:ation|ed)",
    "diagram": r"architectures?|diagrams?|pipelines?|overview|frameworks?|flow ?charts?|schematics?|"
               r"illustrations?|structures?|workflows?|blocks?|networks?|sketch(?:es)?|layouts?|modules?|"
               r"graphs?",
    "table": r"tables?",
}
_WORD_RES = {k: re.compile(r"(?<![A-Za-z])(?:" + v + r")(?![A-Za-z])", re.IGNORECASE) for k, v in _WORDS.items()}
RASTER_FORMATS = frozenset({"png", "jpg", "gif", "tiff", "bmp", "webp"})


def _first_cue(caption: str, allowed: set[str]) -> str | None:
    best, best_pos = None, None
    for kind in allowed:
        m = _WORD_RES[kind].search(caption)
        if m and (best_pos is None or m.start() < best_pos):
            best, best_pos = kind, m.start()
    return best


def source_kind(n_drawings: int, n_files: int, has_tabular: bool = False, uses_pgfplots: bool = False) -> str | None:
    """The kind when the source alone decides it (rules 1 and 2), else None."""
    if n_drawings and (n_files == 0 or uses_pgfplots):
        return "tikz"
    if has_tabular and n_files == 0:
        return "table"
    return None


def cue_counts(text: str) -> dict[str, int]:
    """How many words of each kind group (plot, diagram, photo, table) the text has."""
    return {k: len(rx.findall(text)) for k, rx in _WORD_RES.items()}


def caption_cue(caption_text: str | None) -> str | None:
    """The kind word (plot, diagram, photo, table groups) that comes first in the caption, if any."""
    return _first_cue(caption_text or "", {"plot", "diagram", "photo", "table"})


def figure_kind(caption_text: str | None, formats: list[str | None], n_drawings: int, n_files: int,
                has_tabular: bool = False, uses_pgfplots: bool = False) -> str:
    """Weak figure kind from the source alone (see module docstring); with images, the pipeline refines it
    with `pipeline.extract.kind_image`."""
    rule = source_kind(n_drawings, n_files, has_tabular, uses_pgfplots)
    if rule:
        return rule
    caption = caption_text or ""
    raster = any(f in RASTER_FORMATS for f in formats)
    allowed = {"plot", "diagram", "table"} | ({"photo"} if raster else set())
    cue = _first_cue(caption, allowed)
    if cue:
        return cue
    if "jpg" in formats:
        return "photo"
    return "other"


_SECTION_WORDS = {
    "introduction": r"introduction|intro|motivation",
    "related": r"related|background|prior work|previous work|literature|preliminar(?:y|ies)|state of the art",
    "method": r"methods?|methodology|approach|model|models|framework|architecture|algorithms?|proposed|"
              r"formulation|theory|design|system|technique|our method|problem",
    "experiments": r"experiments?|experimental|evaluation|setup|set-up|implementation|datasets?|benchmarks?|"
                   r"empirical|simulations?|observations|data",
    "results": r"results?|analysis|ablations?|comparisons?|performance|findings",
    "discussion": r"discussion|limitations?|future work|implications|outlook",
    "conclusion": r"conclusions?|concluding|summary|closing remarks",
}
_SECTION_RES = {k: re.compile(r"(?<![A-Za-z])(?:" + v + r")(?![A-Za-z])", re.IGNORECASE)
                for k, v in _SECTION_WORDS.items()}
_APPENDIX_RE = re.compile(r"appendix|appendices|supplementa", re.IGNORECASE)


def section_kind(title: str | None, in_appendix: bool = False) -> str:
    if in_appendix or (title and _APPENDIX_RE.search(title)):
        return "appendix"
    if not title:
        return "other"
    best, best_pos = "other", None
    for kind, rx in _SECTION_RES.items():
        m = rx.search(title)
        if m and (best_pos is None or m.start() < best_pos):
            best, best_pos = kind, m.start()
    return best
