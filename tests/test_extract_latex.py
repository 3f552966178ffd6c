"""LaTeX analysis: one small inline fixture per hard case, real arXiv submissions, and the sample truth."""

import json
import posixpath
import tarfile
import time

import pytest

from pipeline.extract.bodytext import paragraphs
from pipeline.extract.captions import latex_to_text
from pipeline.extract.graphics import GraphicsIndex, resolve_graphic
from pipeline.extract.kind import figure_kind, section_kind
from pipeline.extract.macros import collect_macros, expand_macros
from pipeline.extract.mainfile import decode_tex, find_main_tex
from pipeline.extract.paper import analyse_latex
from pipeline.extract.texclean import clean_tex, remove_false_conditionals, strip_comments

PDF = b"%PDF-1.4\n%fake\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
JPG = b"\xff\xd8\xff\xe0" + b"\x00" * 16
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n"


def doc(body: str, preamble: str = "") -> str:
    return "\\documentclass{article}\n" + preamble + "\n\\begin{document}\n" + body + "\n\\end{document}\n"


def bundle(**files) -> dict[str, bytes]:
    """Keyword names use __ for / and _DOT_ for '.', e.g. figs__a_DOT_pdf -> figs/a.pdf; or pass a dict."""
    out = {}
    for k, v in files.items():
        name = k.replace("__", "/").replace("_DOT_", ".")
        out[name] = v.encode() if isinstance(v, str) else v
    return out


def analyse(files: dict[str, bytes]):
    return analyse_latex(files, "test/0001")


def captions(a) -> list[str | None]:
    return [f.caption_text for f in a.figures]


# ------------------------------------------------------------------------------------------ main file


def test_main_file_from_00readme_xxx_and_json():
    files = {"a.tex": doc("A").encode(), "b.tex": doc("B").encode(), "00README.XXX": b"b.tex toplevelfile\n"}
    assert find_main_tex(files).path == "b.tex"
    files = {"a.tex": doc("A").encode(), "z.tex": doc("Z").encode(),
             "00README.json": json.dumps({"sources": [{"filename": "z.tex", "usage": "toplevel"}]}).encode()}
    assert find_main_tex(files).path == "z.tex"


def test_main_file_heuristics_ignore_appledouble_and_included_drafts():
    files = {
        "._main.tex": b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \\documentclass \\begin{document}",
        "__MACOSX/paper.tex": doc("junk").encode(),
        "main.tex": doc("\\input{intro}").encode(),
        "intro.tex": doc("I am a standalone-capable section").encode(),  # has \documentclass too, but is input
        "notes.tex": b"just notes, no document",
    }
    ch = find_main_tex(files)
    assert ch.path == "main.tex"
    # two complete documents: the conventional name wins over a bigger draft
    files = {"ms.tex": doc("x").encode(), "old_version.tex": doc("y" * 500).encode()}
    assert find_main_tex(files).path == "ms.tex"


def test_decode_utf8_inputenc_and_guess():
    latin = "\\usepackage[latin1]{inputenc}\nCaf\u00e9 Schr\u00f6dinger".encode("latin-1")
    text, enc = decode_tex(latin)
    assert enc == "latin-1" and "Café Schrödinger" in text
    text, enc = decode_tex("\ufeffna\u00efve".encode("utf-8"))
    assert enc == "utf-8" and text == "naïve"
    guessed, enc = decode_tex(("R\u00e9sum\u00e9 des r\u00e9sultats " * 20).encode("cp1252"))
    assert "Résumé" in guessed


def test_non_utf8_caption_end_to_end():
    tex = doc("\\begin{figure}\\includegraphics{a}\\caption{Caf\u00e9 au lait}\\end{figure}",
              "\\usepackage[latin1]{inputenc}")
    a = analyse({"main.tex": tex.encode("latin-1"), "a.png": PNG})
    assert captions(a) == ["Café au lait"]


# ------------------------------------------------------------------------------------------ cleaning


def test_strip_comments_keeps_escaped_percent_and_urls():
    assert strip_comments("50\\% done % a comment\nnext") == "50\\% done next"
    assert strip_comments("\\url{http://x.org/a%20b} % c\n") == "\\url{http://x.org/a%20b} "
    assert strip_comments("line\\\\% comment\nnext") == "line\\\\next"
    # a comment before a blank line keeps the paragraph break
    assert strip_comments("text % c\n\npara") == "text \n\npara"


def test_conditionals_nested_and_else():
    t = "a \\iffalse X \\ifx\\a\\b Y \\else Z \\fi W \\fi b \\iftrue T \\else F \\fi c \\iffalse G \\else H \\fi d"
    out = remove_false_conditionals(t)
    assert out.split() == ["a", "b", "T", "c", "H", "d"]
    # \newif\iffoo defines, it does not open a conditional; unknown conditionals keep both branches
    t = "\\newif\\ifdraft \\iffalse dead \\fi \\ifdraft A \\else B \\fi"
    assert remove_false_conditionals(t).split() == ["\\newif\\ifdraft", "\\ifdraft", "A", "\\else", "B", "\\fi"]
    # unbalanced: left alone
    assert remove_false_conditionals("\\iffalse never closed") == "\\iffalse never closed"


def test_dead_figures_are_not_extracted():
    fig = "\\begin{{figure}}\\includegraphics{{{0}}}\\caption{{{0}}}\\end{{figure}}\n"
    body = (
        fig.format("live1")
        + "% " + fig.format("commented")
        + "\\begin{comment}\n" + fig.format("incomment") + "\\end{comment}\n"
        + "\\iffalse\n" + fig.format("iniffalse") + "\\fi\n"
        + "\\begin{hide}\n" + fig.format("excluded") + "\\end{hide}\n"
        + fig.format("live2")
    )
    tex = doc(body, "\\usepackage{comment}\\excludecomment{hide}") + fig.format("after_end")
    files = {"main.tex": tex.encode(), "unused_draft.tex": ("\\section{x}" + fig.format("draft")).encode()}
    for n in ("live1", "live2", "commented", "incomment", "iniffalse", "excluded", "after_end", "draft"):
        files[n + ".png"] = PNG
    a = analyse(files)
    assert captions(a) == ["live1", "live2"]


def test_clean_tex_cuts_after_end_document():
    assert clean_tex("\\begin{document}x\\end{document} tail", main=True).endswith("\\end{document}")


# ------------------------------------------------------------------------------------------ \input & co


def test_input_forms_include_subfile_import_and_includeonly():
    main = doc(
        "\\input{sections/a}\n\\input sections/b.tex\n\\include{c}\n\\include{skipped}\n"
        "\\subfile{d}\n\\import{chap/}{e}\n\\input{missing_file}\n",
        "\\includeonly{c}",
    )
    fig = "\\begin{{figure}}\\includegraphics{{{0}}}\\caption{{{1}}}\\end{{figure}}"
    files = bundle(
        main_DOT_tex=main,
        sections__a_DOT_tex=fig.format("fa", "from a"),
        sections__b_DOT_tex=fig.format("fb", "from b"),
        c_DOT_tex=fig.format("fc", "from c"),
        skipped_DOT_tex=fig.format("fs", "not in includeonly"),
        d_DOT_tex="\\documentclass[main]{subfiles}\n\\begin{document}\n" + fig.format("fd", "from d")
        + "\n\\end{document}",
        chap__e_DOT_tex=fig.format("img/fe", "from e"),  # graphics inside \import resolve under chap/
        fa_DOT_png=PNG, fb_DOT_png=PNG, fc_DOT_png=PNG, fs_DOT_png=PNG, fd_DOT_pdf=PDF,
        chap__img__fe_DOT_pdf=PDF,
    )
    a = analyse(files)
    assert captions(a) == ["from a", "from b", "from c", "from d", "from e"]
    assert a.figures[-1].graphics[0].path == "chap/img/fe.pdf"
    assert "input_missing:missing_file" in a.warnings


def test_input_cycle_and_depth_limit_do_not_hang():
    files = bundle(main_DOT_tex=doc("\\input{a}"), a_DOT_tex="A \\input{b}", b_DOT_tex="B \\input{a}")
    a = analyse(files)
    assert any(w.startswith("input_cycle") for w in a.warnings)
    deep = {f"d{i}.tex": f"\\input{{d{i + 1}}}".encode() for i in range(40)}
    deep["main.tex"] = doc("\\input{d0}").encode()
    a = analyse(deep)
    assert any(w.startswith("input_depth_limit") for w in a.warnings)


def test_inputs_resolve_relative_to_root_not_includer():
    # TeX's working directory is the main file's: sections/a.tex's \input{sections/b} is root-relative
    files = bundle(
        main_DOT_tex=doc("\\input{sections/a}"),
        sections__a_DOT_tex="\\input{sections/b}",
        sections__b_DOT_tex="\\begin{figure}\\includegraphics{figs/x}\\caption{deep}\\end{figure}",
        figs__x_DOT_pdf=PDF,
    )
    a = analyse(files)
    assert captions(a) == ["deep"] and a.figures[0].graphics[0].path == "figs/x.pdf"


# ------------------------------------------------------------------------------------------ macros


def test_user_macros_in_captions_paths_and_figure_macros():
    pre = (
        "\\newcommand{\\ours}{SciFact\\xspace}\n\\newcommand\\figdir{figs/}\n\\def\\R{\\mathbb{R}}\n"
        "\\newcommand{\\fig}[3][0.5]{\\begin{figure}\\includegraphics[width=#1\\linewidth]{\\figdir #2}"
        "\\caption{#3}\\label{fig:#2}\\end{figure}}\n"
        "\\newenvironment{myfigure}{\\begin{figure}[t]\\centering}{\\end{figure}}\n"
        "\\providecommand{\\ours}{ignored}\n"
    )
    body = (
        "\\fig{plot}{The \\ours{} results on $\\R^n$.}\n"
        "\\fig[0.3]{arch}{\\ours architecture}\n"
        "\\begin{myfigure}\\includegraphics{\\figdir photo}\\caption{A \\ours claim}\\end{myfigure}\n"
    )
    files = bundle(main_DOT_tex=doc(body, pre), figs__plot_DOT_pdf=PDF, figs__arch_DOT_pdf=PDF,
                   figs__photo_DOT_jpg=JPG)
    a = analyse(files)
    assert captions(a) == ["The SciFact results on $\\R^n$.", "SciFact architecture", "A SciFact claim"]
    assert [f.graphics[0].path for f in a.figures] == ["figs/plot.pdf", "figs/arch.pdf", "figs/photo.jpg"]
    assert [f.label for f in a.figures] == ["fig:plot", "fig:arch", None]


def test_macro_expansion_is_bounded_for_recursive_definitions():
    table = collect_macros("\\newcommand{\\a}{x\\a}\\def\\b#1{\\b{#1#1}}")
    out = expand_macros("\\a and \\b{y}", table)
    assert len(out) < 2_000_000  # terminated by the step/depth budget


# ------------------------------------------------------------------------------------------ figures


def test_environment_variants_and_captionof():
    body = (
        "\\begin{figure*}[t]\\includegraphics{a}\\caption{star}\\end{figure*}\n"
        "\\begin{wrapfigure}{r}{0.4\\textwidth}\\includegraphics{b}\\caption{wrap}\\end{wrapfigure}\n"
        "\\begin{sidewaysfigure}\\includegraphics{c}\\caption{sideways}\\end{sidewaysfigure}\n"
        "\\begin{SCfigure}[][t]\\includegraphics{d}\\caption{side caption}\\end{SCfigure}\n"
        "\\begin{minipage}{\\linewidth}\\includegraphics{e}\\captionof{figure}{captionof}\\end{minipage}\n"
        "\\begin{minipage}{\\linewidth}\\captionof{table}{a table}\\end{minipage}\n"
        "\\begin{table}\\includegraphics{t}\\caption{a table float}\\end{table}\n"
    )
    files = {"main.tex": doc(body).encode(), **{f"{n}.png": PNG for n in "abcdet"}}
    a = analyse(files)
    assert [(f.env, f.caption_text) for f in a.figures] == [
        ("figure*", "star"), ("wrapfigure", "wrap"), ("sidewaysfigure", "sideways"),
        ("SCfigure", "side caption"), ("captionof", "captionof")]
    assert [f.graphics[0].path for f in a.figures] == ["a.png", "b.png", "c.png", "d.png", "e.png"]


def test_subfigures_in_all_three_styles():
    subcaption = (
        "\\begin{figure}\\centering"
        "\\begin{subfigure}[b]{0.45\\linewidth}\\includegraphics{a}\\caption{Left $x$}\\label{fig:s:a}\\end{subfigure}"
        "\\begin{subfigure}[b]{0.45\\linewidth}\\includegraphics{b}\\caption{Right}\\label{fig:s:b}\\end{subfigure}"
        "\\caption{Main one}\\label{fig:s}\\end{figure}\n"
    )
    subfloat = ("\\begin{figure}\\subfloat[First\\label{fig:f:a}]{\\includegraphics{c}}\\hfill"
                "\\subfloat[][Second]{\\includegraphics{d}\\label{fig:f:b}}\\caption{Main two}\\label{fig:f}"
                "\\end{figure}\n")
    oldsub = ("\\begin{figure}\\caption{Main three, caption first}"
              "\\subfigure[Old A]{\\includegraphics{e}}\\subfigure[Old B]{\\includegraphics{f}}\\end{figure}\n")
    files = {"main.tex": doc(subcaption + subfloat + oldsub).encode(), **{f"{n}.pdf": PDF for n in "abcdef"}}
    a = analyse(files)
    assert captions(a) == ["Main one", "Main two", "Main three, caption first"]
    assert [f.label for f in a.figures] == ["fig:s", "fig:f", None]
    subs = [[(g.path, g.subcaption_text, g.sublabel) for g in f.graphics] for f in a.figures]
    assert subs == [
        [("a.pdf", "Left $x$", "fig:s:a"), ("b.pdf", "Right", "fig:s:b")],
        [("c.pdf", "First", "fig:f:a"), ("d.pdf", "Second", "fig:f:b")],
        [("e.pdf", "Old A", None), ("f.pdf", "Old B", None)],
    ]


def test_caption_forms_short_long_label_inside_and_order():
    body = (
        "\\begin{figure}\\caption[Short]{The long caption \\label{fig:in}}\\includegraphics{a}\\end{figure}\n"
        "\\begin{figure}\\includegraphics[width=\\linewidth,\n  height=3cm,\n  keepaspectratio]\n"
        "  {a}\n\\caption{After}\\end{figure}\n"
    )
    a = analyse({"main.tex": doc(body).encode(), "a.png": PNG})
    assert captions(a) == ["The long caption", "After"]
    assert a.figures[0].label == "fig:in" and a.figures[0].short_caption_latex == "Short"
    assert a.figures[0].caption_latex == "The long caption \\label{fig:in}"
    assert a.figures[1].graphics[0].path == "a.png"


def test_aastex_epsfig_psfig_epsfbox():
    body = (
        "\\begin{figure}\\plotone{f1.eps}\\caption{one}\\end{figure}\n"
        "\\begin{figure}\\plottwo{f2a}{f2b}\\caption{two}\\end{figure}\n"
        "\\begin{figure}\\epsfig{file=f3.ps,width=8cm}\\caption{epsfig}\\end{figure}\n"
        "\\begin{figure}\\psfig{figure=f4.eps,angle=-90}\\caption{psfig}\\end{figure}\n"
        "\\begin{figure}\\epsfbox{f5.eps}\\caption{epsfbox}\\end{figure}\n"
        "\\figcaption[f6.eps]{AAS figcaption\\label{fig:six}}\n"
    )
    files = {"main.tex": doc(body).encode(), "f1.eps": EPS, "f2a.eps": EPS, "f2b.eps": EPS,
             "f3.ps": b"%!PS-Adobe-2.0\n", "f4.eps": EPS, "f5.eps": EPS, "f6.eps": EPS}
    a = analyse(files)
    assert captions(a) == ["one", "two", "epsfig", "psfig", "epsfbox", "AAS figcaption"]
    paths = [[g.path for g in f.graphics] for f in a.figures]
    assert paths == [["f1.eps"], ["f2a.eps", "f2b.eps"], ["f3.ps"], ["f4.eps"], ["f5.eps"], ["f6.eps"]]
    assert [g.format for f in a.figures for g in f.graphics][:4] == ["eps", "eps", "eps", "ps"]
    assert a.figures[-1].label == "fig:six"


def test_tikz_and_pgf_figures_are_recorded_as_tikz():
    body = (
        "\\begin{figure}\\begin{tikzpicture}\\draw (0,0)--(1,1);"
        "\\begin{scope}\\begin{tikzpicture}\\end{tikzpicture}\\end{scope}\\end{tikzpicture}"
        "\\caption{A drawn plot}\\end{figure}\n"
        "\\begin{figure}\\input{figs/loss.pgf}\\caption{Matplotlib pgf}\\end{figure}\n"
        "\\begin{figure}\\begin{tikzpicture}\\node{\\includegraphics{photo}};\\end{tikzpicture}"
        "\\caption{Annotated image}\\end{figure}\n"
    )
    files = {"main.tex": doc(body).encode(), "figs/loss.pgf": b"\\begin{pgfpicture}\\end{pgfpicture}",
             "photo.jpg": JPG}
    a = analyse(files)
    assert [[(g.status, g.path) for g in f.graphics] for f in a.figures] == [
        [("tikz", None)], [("tikz", "figs/loss.pgf")], [("ok", "photo.jpg")]]
    assert [f.figure_kind for f in a.figures][:2] == ["tikz", "tikz"]


def test_sections_and_appendix():
    body = (
        "\\section{Introduction}\\begin{figure}\\includegraphics{a}\\caption{x}\\end{figure}"
        "\\section[Short]{Related Work}\\subsection{Sub}\\begin{figure}\\includegraphics{a}\\caption{y}\\end{figure}"
        "\\section{Experiments and Results}\\begin{figure}\\includegraphics{a}\\caption{z}\\end{figure}"
        "\\appendix\\section{Proof Details}\\begin{figure}\\includegraphics{a}\\caption{w}\\end{figure}"
    )
    a = analyse({"main.tex": doc(body).encode(), "a.png": PNG})
    assert [(f.section_title, f.section_kind) for f in a.figures] == [
        ("Introduction", "introduction"), ("Related Work", "related"),
        ("Experiments and Results", "experiments"), ("Proof Details", "appendix")]


def test_unclosed_figure_and_unbalanced_caption_do_not_crash():
    body = "\\begin{figure}\\includegraphics{a}\\caption{open {brace}\n\\begin{figure}\\caption{ok}\\end{figure}"
    a = analyse({"main.tex": doc(body).encode(), "a.png": PNG})
    assert len(a.figures) == 2 and a.figures[1].caption_text == "ok"


# ------------------------------------------------------------------------------------------ graphics


def _resolve(name, files, **kw):
    return resolve_graphic(name, GraphicsIndex(files), **kw)


def test_resolution_like_pdftex():
    files = {"f1.pdf": PDF, "f1.png": PNG, "figs/p.v2.png": PNG, "figs/my fig.pdf": PDF,
             "img/only.eps": EPS, "img/conv.eps": EPS, "img/conv-eps-converted-to.pdf": PDF,
             "Figs/Case.PNG": PNG, "other/a.jpg": JPG, "other/a.png": PNG}
    assert _resolve("f1", files).path == "f1.pdf"  # both present: pdf wins
    assert _resolve("f1.png", files).path == "f1.png"  # explicit extension is honoured
    assert _resolve("p.v2", files, graphicspath=["figs/"]).path == "figs/p.v2.png"  # dots in the name
    assert _resolve('"my fig"', files, graphicspath=["figs/"]).path == "figs/my fig.pdf"  # quotes, spaces
    assert _resolve("only", files, graphicspath=["x/", "img/"]).format == "eps"  # .eps after pdftex list
    conv = _resolve("img/conv.eps", files)
    assert conv.path == "img/conv-eps-converted-to.pdf" and conv.format == "pdf"
    case = _resolve("figs/case.png", files)
    assert case.path == "Figs/Case.PNG" and case.case_fallback and case.status == "ok"
    missing = _resolve("nowhere", files)
    assert missing.status == "missing" and missing.path is None
    # \DeclareGraphicsExtensions replaces the order
    assert _resolve("other/a", files, extensions=[".png", ".jpg"]).path == "other/a.png"
    assert _resolve("other/a", files).path == "other/a.png"  # default order: .png before .jpg
    # graphicspath: first prefix that has the file, prefix without trailing slash tolerated
    assert _resolve("p.v2", files, graphicspath=["figs"]).path == "figs/p.v2.png"


def test_graphicspath_and_extensions_in_document():
    pre = ("\\graphicspath{{nothere/}{figures/}{ ./img/ }}\n\\DeclareGraphicsExtensions{.png,.pdf}\n")
    body = ("\\begin{figure}\\includegraphics{a}\\caption{a}\\end{figure}"
            "\\begin{figure}\\includegraphics{b}\\caption{b}\\end{figure}"
            "\\begin{figure}\\includegraphics{{c.d}.pdf}\\caption{c}\\end{figure}")
    files = {"main.tex": doc(body, pre).encode(), "figures/a.pdf": PDF, "figures/a.png": PNG,
             "img/b.pdf": PDF, "figures/c.d.pdf": PDF}
    a = analyse(files)
    assert [f.graphics[0].path for f in a.figures] == ["figures/a.png", "img/b.pdf", "figures/c.d.pdf"]


def test_format_from_magic_not_name():
    files = {"fig.png": JPG, "main.tex": doc("\\begin{figure}\\includegraphics{fig.png}\\end{figure}").encode()}
    a = analyse(files)
    assert a.figures[0].graphics[0].format == "jpg"


# ------------------------------------------------------------------------------------------ captions


def test_caption_text_rules():
    cap = ("Accuracy~vs.\\ epochs on $\\mathcal{D}_i$ (see Fig.~\\ref{fig:a}, \\autoref{t} and \\cite[p.~3]{x,y})."
           "  \\textbf{Bold}\n \\emph{it} -- 50\\% \\replaced{new}{old} \\added[id=a]{plus}\\deleted{gone}.")
    assert latex_to_text(cap) == ("Accuracy vs. epochs on $\\mathcal{D}_i$ (see Fig. <ref>, <ref> and <cit.>). "
                                  "Bold it – 50% new plus.")
    assert latex_to_text("Schr\\\"odinger's \\'etude \\(x\\) {\\small small}") == "Schrödinger’s étude $x$ small"  # TeX prints ' as ’
    assert latex_to_text("plain caption\n  with   spaces") == "plain caption with spaces"


# ------------------------------------------------------------------------------------------ kinds & text


def test_figure_kind_rules():
    assert figure_kind("Training loss vs. epochs", ["pdf"], 0, 1) == "plot"
    assert figure_kind("Overview of the architecture", ["pdf"], 0, 1) == "diagram"
    assert figure_kind("Example images from the dataset", ["jpg"], 0, 1) == "photo"
    assert figure_kind("Example images from the dataset", ["pdf"], 0, 1) == "other"  # photo needs a raster
    assert figure_kind("Anything", [], 1, 0) == "tikz"
    assert figure_kind("Results", [], 0, 0, has_tabular=True) == "table"
    assert figure_kind("Something", ["jpg"], 0, 1) == "photo"
    assert section_kind("Conclusions and Future Work") == "conclusion"
    assert section_kind("Whatever", in_appendix=True) == "appendix"
    assert section_kind("Notation") == "other"


def test_paragraphs_drop_floats_and_keep_inline_math():
    body = ("\\section{Intro}\nWe study \\textbf{graphs} with $n$ nodes, see \\cite{a} and Fig.~\\ref{f}.\n\n"
            "\\begin{figure}\\includegraphics{x}\\caption{Not body text}\\end{figure}\n"
            "Second paragraph has \\emph{five} words\\footnote{dropped {nested}} here.\n"
            "\\begin{equation} E = mc^2 \\end{equation}\nand continues after the equation here.\n\n"
            "Short.\n")
    assert paragraphs(body) == [
        "We study graphs with $n$ nodes, see <cit.> and Fig. <ref>.",
        "Second paragraph has five words here.",
        "and continues after the equation here.",
    ]


def test_title_abstract_and_json_shape():
    tex = doc("\\maketitle\\begin{abstract}We show \\emph{things}.\\end{abstract}"
              "\\section{Method}\\begin{figure}\\includegraphics{a}\\caption{Cap}\\label{fig:a}\\end{figure}",
              "\\title{A \\textbf{Bold} Title\\thanks{grant}}")
    a = analyse({"main.tex": tex.encode(), "a.png": PNG})
    assert a.title == "A Bold Title" and a.abstract == "We show things."
    j = a.figures[0].to_json("test/0001")
    assert list(j) == ["paper_id", "figure_index", "env", "label", "caption_latex", "caption_text",
                       "section_title", "section_kind", "figure_kind", "graphics"]
    assert list(j["graphics"][0]) == ["as_written", "path", "format", "status", "reason", "width", "height",
                                      "subcaption_text", "sublabel"]
    assert j["figure_index"] == 1 and j["graphics"][0]["path"] == "a.png" and j["section_kind"] == "method"
    json.dumps(j)


def test_no_tex_and_garbage_never_raise():
    assert analyse({"paper.pdf": PDF}).main_tex is None
    assert analyse({}).figures == []
    garbage = {"main.tex": b"\\documentclass{x}\\begin{document}" + bytes(range(256)) * 50
               + b"\\begin{figure}\\caption{\\end{document}"}
    analyse(garbage)  # must not raise
    deep = "\\begin{figure}" + "{" * 5000 + "\\caption{x}" + "\\end{figure}"
    analyse({"main.tex": doc(deep).encode()})


# ------------------------------------------------------------------------------------------ real fixtures


def _untar(path) -> dict[str, bytes]:
    """Regular members only, normalised names, nothing unsafe (traversal, absolute, links)."""
    files = {}
    with tarfile.open(path) as tf:
        for m in tf:
            name = posixpath.normpath(m.name)
            if not m.isreg() or name.startswith(("..", "/")):
                continue
            files[name] = tf.extractfile(m).read()
    return files


def test_real_appledouble_submission(real_fixtures):
    files = _untar(real_fixtures / "1801.03879-1.tar.gz")
    assert any(p.startswith("._") for p in files)
    a = analyse(files)
    assert a.main_tex == "defective-fpt.tex"
    assert a.figures == []  # its only float is a table
    assert a.title and a.title.startswith("Parameterized (Approximate) Defective Coloring")
    assert len(a.paragraphs) > 50


def test_real_bad_file_names(real_fixtures):
    files = _untar(real_fixtures / "Upload9BadFileNames.tar.gz")
    a = analyse(files)
    assert a.main_tex == "ExcUpdateIntervals2ArXiv.tex"
    assert len(a.figures) == 13 and a.n_graphics == 28
    names = [g.as_written for f in a.figures for g in f.graphics]
    assert "figs/examples/-+Start/-1-100(4)" in names and "figs/localisations/1110(79)" in names
    # only the odd-named PNGs at the root exist; they are found by their base name
    ok = sorted({g.path for f in a.figures for g in f.graphics if g.status == "ok"})
    assert ok == ["00-1-1(36).png", "101-1(69).png"]
    assert all(g.status == "missing" for f in a.figures for g in f.graphics if g.path is None)
    assert sum(1 for f in a.figures for g in f.graphics if g.subcaption_text) == 23  # all \\subfigure[..]


def test_real_nested_postscript_figures(real_fixtures):
    files = _untar(real_fixtures / "source_with_dir.tar.gz")
    a = analyse(files)
    assert a.main_tex == "source/draft.tex"
    assert len(a.figures) == 23 and a.n_graphics == 41
    assert all(g.status == "ok" for f in a.figures for g in f.graphics)
    paths = [g.path for f in a.figures for g in f.graphics]
    assert paths[0] == "source/chip_images/3c449.ps" and "source/agn_spectra.ps_page_4" in paths
    assert {g.format for f in a.figures for g in f.graphics} <= {"ps", "eps"}


def test_real_macosx_folder(real_fixtures):
    files = _untar(real_fixtures / "with__MACOSX_hidden.tar.gz")
    a = analyse(files)
    assert a.main_tex == "with__MACOSX_hidden/For-arXive/pol_leps.tex"
    assert len(a.figures) == 9
    status = [(g.as_written, g.status) for f in a.figures for g in f.graphics]
    assert ("leps.eps", "missing") in status
    assert sum(s == "ok" for _, s in status) == 8
    assert a.figures[0].graphics[0].path == "with__MACOSX_hidden/For-arXive/kinem2.eps"
    assert a.figures[0].caption_text.startswith("The kinematics of $e^+e^-$ pair photo production")


def test_real_00readme_and_single_table_paper(real_fixtures):
    a = analyse(_untar(real_fixtures / "upload2.tar.gz"))
    assert a.main_tex == "main_a.tex" and a.figures == []
    a = analyse(_untar(real_fixtures / "upload3.tar.gz"))
    assert a.main_tex == "DeltaEMs.tex" and a.figures == []


def test_real_pdf_only_and_html(real_fixtures):
    assert analyse(_untar(real_fixtures / "upload5.tar.gz")).main_tex is None
    a = analyse(_untar(real_fixtures / "sampleF_html.tar.gz"))
    assert a.figures == []


# ------------------------------------------------------------------------------------------ sample truth


@pytest.mark.slow
def test_sample_papers_match_ground_truth():
    from pipeline.extract.bundle import read_bundle
    from pipeline.sample.papers import build_paper
    from pipeline.sample.plan import plan_papers

    checked = 0
    for plan in plan_papers(14, seed=3):
        bp = build_paper(plan)
        if bp.truth.get("source_format") not in ("tex", "tar") or bp.truth.get("status") == "error":
            continue
        b = read_bundle(bp.data)
        a = analyse_latex(b, bp.truth["paper_id"])
        exp = bp.truth["figures"]
        assert len(a.figures) == len(exp), bp.truth["paper_id"]
        for f, tf in zip(a.figures, exp, strict=True):
            assert f.caption_text == tf["caption_text"]
            assert f.label == tf["label"] and f.env == tf["env"]
            for g, tg in zip(f.graphics, tf["graphics"], strict=True):
                assert g.path == tg["path"], (bp.truth["paper_id"], tg)
                assert g.status == ("ok" if tg["status"] == "error" else tg["status"])
        checked += len(exp)
    assert checked > 10


def test_side_by_side_captions_split_and_minipage_subcaptions():
    body = (
        "\\begin{figure}\\begin{minipage}{.48\\linewidth}\\includegraphics{a}\\caption{First}\\label{fa}"
        "\\end{minipage}\\hfill\\begin{minipage}{.48\\linewidth}\\includegraphics{b}\\caption{Second}"
        "\\end{minipage}\\end{figure}\n"
        "\\begin{figure}\\begin{minipage}{.5\\linewidth}\\includegraphics{a}\\subcaption{SA}\\label{sa}"
        "\\end{minipage}\\begin{minipage}{.5\\linewidth}\\includegraphics{b}\\captionof{subfigure}{SB}"
        "\\end{minipage}\\caption{Main}\\label{m}\\end{figure}\n"
    )
    a = analyse({"main.tex": doc(body).encode(), "a.png": PNG, "b.png": PNG})
    # LaTeX numbers every \caption: two figures, each graphic with its own caption
    assert [(f.caption_text, f.label, [g.path for g in f.graphics]) for f in a.figures] == [
        ("First", "fa", ["a.png"]), ("Second", None, ["b.png"]), ("Main", "m", ["a.png", "b.png"])]
    assert [(g.subcaption_text, g.sublabel) for g in a.figures[2].graphics] == [("SA", "sa"), ("SB", None)]


def test_many_unclosed_figures_stay_linear():
    body = "\\begin{figure}\\includegraphics{a}\\caption{x}" * 3000
    t0 = time.perf_counter()
    a = analyse({"main.tex": doc(body).encode(), "a.png": PNG})
    assert len(a.figures) == 3000
    assert time.perf_counter() - t0 < 20  # quadratic rescans would take minutes


def test_input_names_built_from_preamble_macros():
    files = bundle(main_DOT_tex=doc("\\input{\\secdir/intro}", "\\newcommand{\\secdir}{sections}"),
                   sections__intro_DOT_tex="\\begin{figure}\\includegraphics{a}\\caption{via macro}\\end{figure}",
                   a_DOT_png=PNG)
    assert captions(analyse(files)) == ["via macro"]


def test_ifpdf_format_twins_give_one_graphic():
    body = ("\\begin{figure}\\ifpdf\\includegraphics{f.pdf}\\else\\includegraphics{f.eps}\\fi\\caption{t}\\end{figure}"
            "\\begin{figure}\\includegraphics[viewport=0 0 1 1]{g.png}\\includegraphics[viewport=1 1 2 2]{g.png}"
            "\\caption{two crops}\\end{figure}")
    a = analyse({"main.tex": doc(body).encode(), "f.eps": EPS, "g.png": PNG})
    assert [[(g.as_written, g.status) for g in f.graphics] for f in a.figures] == [
        [("f.eps", "ok")], [("g.png", "ok"), ("g.png", "ok")]]


def test_paragraph_math_survives_commands_that_swallow_text():
    # a footnote or an \item[...] holding math must not lose the other formulas of the document
    par = paragraphs("We note that $N_H$ and $\\Gamma$ are\\footnote{with $x$} degenerate "
                     "\\item[$y$] here, at \\$5 per fit, in the data.")
    assert par == ["We note that $N_H$ and $\\Gamma$ are degenerate here, at $5 per fit, in the data."]


def test_aastex_gridline_fig():
    body = ("\\begin{figure*}\\gridline{\\fig{f1.pdf}{0.3\\textwidth}{(a) Left}\\fig{f2}{0.3\\textwidth}{(b)}}"
            "\\caption{Grid of panels.}\\label{fig:grid}\\end{figure*}")
    tex = "\\documentclass[twocolumn]{aastex631}\n\\begin{document}\n" + body + "\n\\end{document}\n"
    a = analyse({"main.tex": tex.encode(), "f1.pdf": PDF, "f2.pdf": PDF})
    f = a.figures[0]
    assert (f.caption_text, f.label) == ("Grid of panels.", "fig:grid")
    assert [(g.path, g.subcaption_text) for g in f.graphics] == [("f1.pdf", "(a) Left"), ("f2.pdf", "(b)")]


def test_stacked_captions_in_one_float_split():
    body = ("\\begin{figure}\\includegraphics{a}\\caption{Top}\\label{t}\n\\vspace{2mm}\n"
            "\\includegraphics{b}\\caption{Bottom}\\label{b}\\end{figure}"
            "\\begin{figure}\\caption{Only a caption}\\caption{and another}\\includegraphics{a}\\end{figure}")
    a = analyse({"main.tex": doc(body).encode(), "a.png": PNG, "b.png": PNG})
    assert [(f.caption_text, f.label, [g.path for g in f.graphics]) for f in a.figures] == [
        ("Top", "t", ["a.png"]), ("Bottom", "b", ["b.png"]), ("Only a caption", None, ["a.png"])]
    assert "multiple_captions:2" in a.figures[2].warnings


def test_macros_from_the_authors_own_sty():
    files = bundle(main_DOT_tex=doc("\\begin{figure}\\includegraphics{a}\\caption{\\ours{} wins}\\end{figure}",
                                    "\\usepackage{amsmath,mymacros}"),
                   mymacros_DOT_sty="\\ProvidesPackage{mymacros}\n\\newcommand{\\ours}{SciFact}\n",
                   a_DOT_png=PNG)
    assert captions(analyse(files)) == ["SciFact wins"]


def test_inkscape_pdf_tex_uses_the_pdf_and_standalone_is_tikz():
    body = ("\\begin{figure}\\def\\svgwidth{\\linewidth}\\input{figs/sketch.pdf_tex}\\caption{inkscape}\\end{figure}"
            "\\begin{figure}\\includestandalone[width=3cm]{figs/tree}\\caption{standalone}\\end{figure}")
    files = {"main.tex": doc(body).encode(), "figs/sketch.pdf": PDF, "figs/sketch.pdf_tex": b"\\begin{picture}",
             "figs/tree.tex": b"\\documentclass{standalone}\\begin{document}\\tikz\\end{document}"}
    a = analyse(files)
    assert [(g.status, g.path, g.format) for f in a.figures for g in f.graphics] == [
        ("ok", "figs/sketch.pdf", "pdf"), ("tikz", "figs/tree.tex", "tikz")]


def test_main_file_is_the_document_that_uses_the_bundle():
    """The issue's book: book/main.tex (\\documentclass, \\begin{document}) is \\input by wrappers without a
    \\documentclass, one per paper size, beside a small stand-alone exercise sheet at the root. The depth and
    size rules alone picked the sheet; the book uses the bundle's chapters and figures."""
    from pipeline.extract.mainfile import find_main_tex

    files = {
        "book/main.tex": (b"\\documentclass{book}\\begin{document}\\input{ch1}\\input{ch2}\\end{document}"),
        "book/ch1.tex": b"\\chapter{A}\\begin{figure}\\includegraphics{fig1}\\caption{One.}\\end{figure}",
        "book/ch2.tex": b"\\chapter{B}\\begin{figure}\\includegraphics{fig2}\\caption{Two.}\\end{figure}",
        "book/fig1.pdf": b"%PDF-1.4", "book/fig2.pdf": b"%PDF-1.4",
        "book-a4.tex": b"\\PassOptionsToClass{a4paper}{book}\\input{book/main}",
        "book-letter.tex": b"\\PassOptionsToClass{letterpaper}{book}\\input{book/main}",
        "solutions.tex": b"\\documentclass{article}\\begin{document}" + b"Exercise solutions. " * 400
                         + b"\\end{document}",
    }
    assert find_main_tex(files).path == "book/main.tex"


def test_caption_words_in_text_style_commands_and_math_macros_survive():
    """The issue's captions: words in \\texttt/\\textsf (also through user macros) are kept; a macro that
    expands to \\ensuremath gives math kept as written; math is never macro-expanded."""
    from pipeline.extract.macros import collect_macros
    from pipeline.extract.paper import caption_text

    table = collect_macros("\\newcommand{\\tool}[1]{\\textsf{#1}}\\newcommand{\\mission}{\\tool{Gaia}}"
                           "\\newcommand{\\mom}{\\ensuremath{\\psi\\,p}\\xspace}\\newcommand{\\R}{\\mathbb{R}}"
                           "\\newacronym{sdm}{SDM}{signal detection model}")
    assert caption_text("using \\texttt{plot}.", table) == "using plot."
    assert caption_text("star \\texttt{KIC 1234}", table) == "star KIC 1234"
    assert caption_text("C\\texttt{++} code", table) == "C++ code"
    assert caption_text("The \\mission\\ data", table) == "The Gaia data"
    assert caption_text("The \\mom distribution", table) == "The $\\psi\\,p$ distribution"
    assert caption_text("on $\\R^n$ with the \\gls{sdm}", table) == "on $\\R^n$ with the SDM"
