"""Words for the sample papers: titles, authors, abstracts, body paragraphs and captions, per category.

Captions are built from `Seg`ments that carry both the LaTeX written into the paper and the plain text a
correct extractor must produce from it (pylatexenc conventions: math kept as `$...$`, `\\ref` -> `<ref>`,
`\\cite` -> `<cit.>`, user macros expanded, `~` -> space), so the ground truth is known by construction.
"""

import dataclasses
import re

import numpy as np

REF = "<ref>"
CIT = "<cit.>"


@dataclasses.dataclass(frozen=True)
class Seg:
    latex: str
    text: str


def plain(s: str) -> Seg:
    return Seg(s, s)


def math(s: str) -> Seg:
    return Seg(f"${s}$", f"${s}$")


def ref(prefix: str, label: str) -> Seg:
    return Seg(f"{prefix}~\\ref{{{label}}}", f"{prefix} {REF}")


def cite(keys: list[str]) -> Seg:
    return Seg(f"\\cite{{{','.join(keys)}}}", CIT)


def emph(s: str) -> Seg:
    return Seg(f"\\emph{{{s}}}", s)


def join_latex(segs: list[Seg]) -> str:
    return "".join(s.latex for s in segs)


def join_text(segs: list[Seg]) -> str:
    return normalise_text("".join(s.text for s in segs))


def normalise_text(text: str) -> str:
    """Whitespace as the figures table stores it: NBSP and runs of spaces/newlines become one space."""
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ")).strip()


def pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


# ---------------------------------------------------------------------------------------------- vocabulary

_TOPIC = {
    "cs.CV": (["image segmentation", "object detection", "depth estimation", "video understanding",
               "image synthesis", "visual tracking", "3D reconstruction"],
              ["convolutional network", "vision transformer", "diffusion model", "feature pyramid",
               "contrastive encoder"]),
    "cs.LG": (["representation learning", "continual learning", "federated optimisation",
               "reinforcement learning", "graph learning", "out-of-distribution detection"],
              ["gradient method", "variational autoencoder", "graph neural network", "policy gradient",
               "mixture of experts"]),
    "cs.CL": (["machine translation", "question answering", "summarisation", "named entity recognition",
               "dialogue modelling", "fact verification"],
              ["language model", "sequence-to-sequence model", "retrieval-augmented generator",
               "tokeniser", "attention mechanism"]),
    "math.PR": (["random walks", "branching processes", "stochastic differential equations",
                 "percolation", "random matrices", "interacting particle systems"],
                ["martingale", "coupling", "large deviation principle", "Markov chain", "Gaussian process"]),
    "math.AP": (["nonlinear heat equations", "Navier-Stokes equations", "dispersive equations",
                 "free boundary problems", "elliptic systems", "kinetic equations"],
                ["weak solution", "energy estimate", "Sobolev embedding", "maximum principle",
                 "Strichartz estimate"]),
    "astro-ph.GA": (["galaxy evolution", "star formation", "the interstellar medium", "galactic dynamics",
                     "active galactic nuclei", "dwarf galaxies"],
                    ["spectroscopic survey", "rotation curve", "stellar population model",
                     "hydrodynamical simulation", "photometric catalogue"]),
    "cond-mat.mtrl-sci": (["thin films", "two-dimensional materials", "high-entropy alloys",
                           "perovskite oxides", "battery cathodes", "topological semimetals"],
                          ["density functional theory", "X-ray diffraction", "phonon calculation",
                           "machine-learned potential", "electron microscopy"]),
    "q-bio.NC": (["cortical dynamics", "place cells", "synaptic plasticity", "neural coding",
                  "decision making", "oscillations in the hippocampus"],
                 ["spiking network", "calcium imaging", "rate model", "connectome", "population code"]),
    "stat.ML": (["kernel methods", "Bayesian inference", "causal discovery", "conformal prediction",
                 "high-dimensional regression", "density estimation"],
                ["estimator", "posterior sampler", "variational approximation", "bootstrap", "random feature model"]),
    "hep-th": (["holography", "string compactifications", "black hole entropy", "conformal field theory",
                "scattering amplitudes", "inflationary cosmology"],
               ["effective field theory", "AdS/CFT correspondence", "supersymmetric gauge theory",
                "bootstrap equation", "worldsheet theory"]),
}

_MATH = {
    "cs": ["\\mathcal{L}_{\\mathrm{CE}}", "\\eta=10^{-3}", "k=5", "\\lambda=0.1", "d=768", "\\tau=0.07",
           "N=50\\,000", "\\mathrm{top}\\text{-}1"],
    "math": ["u_t=\\Delta u+f(u)", "\\alpha\\in(0,1)", "L^2(\\Omega)", "\\mathbb{E}[X_t]", "d\\geq 3",
             "\\|u\\|_{H^1}", "p>1", "\\sigma^2"],
    "astro-ph": ["z\\sim 2", "M_\\star>10^{10}M_\\odot", "\\mathrm{H}\\alpha", "R_e", "\\sigma_v",
                 "\\log(M/M_\\odot)"],
    "cond-mat": ["E_F", "T_c=35\\,\\mathrm{K}", "\\Delta E", "k_BT", "a=3.9\\,\\AA", "\\rho(T)"],
    "q-bio": ["\\tau_m=20\\,\\mathrm{ms}", "V_{\\mathrm{th}}", "N=1000", "\\theta", "w_{ij}", "r(t)"],
    "stat": ["\\hat\\theta_n", "n^{-1/2}", "\\mathcal{O}(n\\log n)", "\\alpha=0.05", "p\\gg n", "\\pi(\\theta|x)"],
    "hep": ["\\mathcal{N}=4", "g_s\\to 0", "AdS_5\\times S^5", "c=26", "\\Lambda<0", "\\beta(g)"],
}

_FIRST = ["Alice", "Bo", "Carla", "Dmitri", "Elena", "Farid", "Grace", "Hiroshi", "Ines", "Jonas", "Kavya",
          "Liang", "Maria", "Nikolai", "Olga", "Pedro", "Qing", "Rahul", "Sofia", "Tomas", "Uma", "Victor",
          "Wei", "Yara", "Zoltan", "Jean-Pierre", "Ana Maria", "J. R.", "M."]
_LAST = ["Anderson", "Bianchi", "Chen", "Dubois", "Eriksson", "Fernandez", "Garcia", "Haddad", "Ivanova",
         "Jensen", "Kowalski", "Li", "Martin", "Nakamura", "Okafor", "Petrov", "Quinn", "Rossi", "Schmidt",
         "Tanaka", "Ueda", "Van der Berg", "Wang", "Xu", "Yilmaz", "Zhang", "Novak", "Silva", "Kim", "Singh"]

_TITLE_FORMS = [
    "{Method} for {Topic}", "On {topic} via {method}s", "Towards Robust {Topic} with {Method}s",
    "A {Method} Approach to {Topic}", "{Topic}: New Results from a {Method}", "Scaling Laws of {Topic}",
    "Revisiting {Topic} with {Method}s", "Sharp Bounds in {Topic}", "Learning {Topic} from Sparse Data",
]


def field_key(category: str) -> str:
    archive = category.split(".")[0]
    if archive.startswith("hep"):
        return "hep"
    return archive if archive in _MATH else "cs"


def _title_case(s: str) -> str:
    return " ".join(w if w.isupper() or w[0].isupper() else w.capitalize() for w in s.split())


def title(category: str, rng) -> str:
    topics, methods = _TOPIC[category]
    topic, method = pick(rng, topics), pick(rng, methods)
    return pick(rng, _TITLE_FORMS).format(Topic=_title_case(topic), topic=topic, Method=_title_case(method),
                                          method=method)


def authors(rng) -> list[str]:
    if rng.random() < 0.03:
        return ["The SAMPLE Collaboration"]
    n = int(rng.integers(1, 7))
    names = []
    for _ in range(n):
        name = f"{pick(rng, _FIRST)} {pick(rng, _LAST)}"
        if rng.random() < 0.03:
            name += " Jr"
        names.append(name)
    return names


def math_snippet(category: str, rng) -> str:
    return f"${pick(rng, _MATH[field_key(category)])}$"


_SCALING = ["$\\mathcal{O}(n^{-1/2})$", "$N^{-\\alpha}$", "$t^{-d/2}$", "$e^{-\\lambda t}$", "$\\log n$",
            "$\\sqrt{T}$", "$\\epsilon^{-2}$", "$L^{2/3}$"]

# Field-flavoured sentence forms for body text: {topic} {method} {math} {cite} {ref} {scaling} slots.
_SENTENCES = {
    "*": [
        "Recent work on {topic} {cite} relies on a {method}.",
        "We assume {math} throughout, which is standard for {topic}.",
        "As shown in {ref}, the {method} behaves as expected.",
        "In particular, {math} controls the error of the {method}.",
        "The error decays as {scaling}, in agreement with the prediction of {cite}.",
        "A closely related {method} was proposed in {cite}, but without guarantees.",
        "We now turn to {topic}, where the picture is less clear.",
        "The main difficulty is that {math} fails near the boundary of the admissible region.",
        "Table~\\ref{{tab:main}} summarises the comparison.",
        "Details of the derivation are deferred to the appendix.",
    ],
    "cs": [
        "We train the {method} for 100 epochs with a batch size of 256 and report the mean over three seeds.",
        "Unlike prior approaches {cite}, our {method} requires no additional labels.",
        "On the standard benchmark the {method} improves accuracy by {num} points over the strongest baseline.",
        "Hyperparameters were tuned on a held-out split, with {math}.",
    ],
    "math": [
        "Let {math} and suppose the assumptions of Theorem~\\ref{{thm:main}} hold.",
        "By the {method} and a standard compactness argument, the claim follows.",
        "The proof proceeds by induction on the dimension, using {cite} for the base case.",
        "We remark that the bound {scaling} is sharp up to constants.",
    ],
    "astro-ph": [
        "Our sample comprises {num}00 galaxies observed with the same instrument setup.",
        "Fluxes were corrected for Galactic extinction following {cite}.",
        "The {method} yields stellar masses consistent with previous estimates within 0.2 dex.",
    ],
    "cond-mat": [
        "Samples were grown by pulsed laser deposition and characterised by {method}.",
        "The calculated gap of {num}.1 eV agrees well with optical measurements {cite}.",
        "We use a plane-wave cutoff of 500 eV and a dense $k$-point mesh.",
    ],
    "q-bio": [
        "Recordings were obtained from {num}0 cells in five animals.",
        "The {method} reproduces the observed firing statistics with {math}.",
        "This suggests that {topic} relies on recurrent excitation {cite}.",
    ],
    "stat": [
        "Under the stated conditions the {method} is consistent and asymptotically normal.",
        "We compare against the bootstrap and a Bayesian alternative {cite}.",
        "The coverage of the resulting intervals is close to the nominal level for {math}.",
    ],
    "hep": [
        "In the limit {math} the {method} reduces to the free theory.",
        "The one-loop correction scales as {scaling} and is therefore subleading.",
        "This reproduces the entropy computed in {cite} from a different viewpoint.",
    ],
}


def _fill(form: str, category: str, rng, cites, refs) -> str:
    topics, methods = _TOPIC[category]
    ref_text = ""
    if "{ref}" in form:
        prefix, label = pick(rng, refs)
        ref_text = f"{prefix}~\\ref{{{label}}}"
    return form.format(
        topic=pick(rng, topics), method=pick(rng, methods), math=math_snippet(category, rng),
        cite=f"\\cite{{{pick(rng, cites)}}}" if cites else "", ref=ref_text, scaling=pick(rng, _SCALING),
        num=int(rng.integers(2, 10)),
    )


def abstract(category: str, rng) -> str:
    topics, methods = _TOPIC[category]
    topic, method = pick(rng, topics), pick(rng, methods)
    sentences = [
        f"We study {topic} using a {method}.",
        f"Our analysis shows that the relevant error scales as {pick(rng, _SCALING)} in the regime of interest.",
        f"Compared with previous work, the proposed {method} improves the estimate by a factor of "
        f"{int(rng.integers(2, 9))}.",
        f"We further characterise the case {math_snippet(category, rng)} and discuss its implications for "
        f"{pick(rng, topics)}.",
        "Numerical experiments confirm the theory and all code is made available.",
        f"Finally, we relate our findings to open problems in {pick(rng, topics)}.",
    ]
    keep = sentences[:2] + [s for s in sentences[2:] if rng.random() < 0.7]
    return " ".join(keep)


def paragraph(category: str, rng, cites: list[str], refs: list[tuple[str, str]]) -> str:
    """A body paragraph with math, citations and cross references (LaTeX), in the field's vocabulary."""
    forms = _SENTENCES["*"] + _SENTENCES.get(field_key(category), []) * 2
    if not refs:
        forms = [f for f in forms if "{ref}" not in f]
    return " ".join(_fill(pick(rng, forms), category, rng, cites, refs) for _ in range(int(rng.integers(3, 7))))


# ---------------------------------------------------------------------------------------------- captions

# Caption openings per sub-kind and field ("*": any field), so caption text carries the field's vocabulary.
_CAPTION_HEAD: dict[str, dict[str, list[str]]] = {
    "line": {
        "cs": ["Training loss versus epoch", "Validation accuracy during training", "Learning curves of all methods"],
        "math": ["Sample paths of the process", "Profiles of the solution at several times",
                 "Decay of the energy in time"],
        "astro-ph": ["Spectrum of the source", "Rotation curve of the galaxy", "Light curve of the nucleus"],
        "cond-mat": ["Band structure along high-symmetry lines", "Temperature dependence of the resistivity"],
        "q-bio": ["Membrane potential traces of three neurons", "Population firing rate over time"],
        "stat": ["Convergence of the estimator", "Risk as a function of the sample size"],
        "hep": ["The effective potential for several couplings", "Running of the coupling constant"],
    },
    "scatter": {
        "cs": ["t-SNE projection of the learned embeddings", "Predicted versus true labels"],
        "math": ["Realisation of the point process", "Samples from the invariant measure"],
        "astro-ph": ["Colour-magnitude diagram of the sample", "Stellar mass versus star formation rate"],
        "cond-mat": ["Predicted versus computed formation energies", "Lattice constant versus composition"],
        "q-bio": ["Raster plot of the recorded spikes", "Tuning curves of the recorded cells"],
        "stat": ["Samples from the posterior", "Clusters found by the mixture model"],
        "*": ["Distribution of the samples"],
    },
    "bar": {
        "cs": ["Accuracy of all methods on each benchmark", "Ablation study of the main components",
               "Runtime comparison"],
        "math": ["Histogram of the hitting times", "Empirical distribution of the maximum"],
        "*": ["Comparison of the methods", "Histogram of the observed values"],
    },
    "heatmap": {
        "cs": ["Attention weights of the final layer", "Confusion matrix on the test set"],
        "math": ["The solution field at the final time", "Level sets of the potential"],
        "astro-ph": ["Projected density of the sample", "Surface brightness map"],
        "cond-mat": ["Phase diagram in the temperature-pressure plane", "Charge density in the unit cell"],
        "q-bio": ["Connectivity matrix of the network", "Correlation between recorded units"],
        "stat": ["Estimated covariance matrix", "Posterior correlation of the parameters"],
        "hep": ["Contours of the scalar potential", "The moduli space metric"],
    },
    "block": {
        "cs": ["Overview of the proposed pipeline", "Architecture of our model", "Schematic of the training procedure"],
        "*": ["Block diagram of the method", "Flow of the algorithm"],
    },
    "network": {
        "math": ["The graph used in the construction", "Example of a random graph"],
        "q-bio": ["Connectivity of the network model", "Circuit diagram of the motif"],
        "hep": ["The diagram contributing at one loop", "Tree-level exchange diagram"],
        "*": ["The interaction graph"],
    },
    "photo": {
        "cs": ["Qualitative results on the validation set", "Example images from the dataset"],
        "astro-ph": ["Image of the field", "Composite image of the galaxy"],
        "cond-mat": ["Micrograph of the sample", "Electron micrograph after annealing"],
        "q-bio": ["Fluorescence image of the culture", "Two-photon image of the recorded area"],
        "*": ["Example images"],
    },
    "table": {"*": ["Table of the main results", "Table comparing all methods (rendered as an image)"]},
    "tikz": {
        "math": ["Sketch of the construction", "Illustration of the domain and its boundary",
                 "Commutative diagram of the maps"],
        "*": ["Sketch of the setup", "Illustration of the geometry"],
    },
}


def caption_head(subkind: str, category: str, rng) -> str:
    heads = _CAPTION_HEAD[subkind]
    return pick(rng, heads.get(field_key(category)) or heads.get("*") or next(iter(heads.values())))


def caption(subkind: str, category: str, rng, *, ours: str | None = None,
            refs: list[tuple[str, str]] = (), cites: list[str] = ()) -> list[Seg]:
    """A figure caption: a head phrase, maybe math, maybe a ref or cite, maybe the paper's own macro."""
    segs = [plain(caption_head(subkind, category, rng))]
    if ours and rng.random() < 0.7:
        segs += [plain(" for "), Seg("\\ours{}", ours)]
    if rng.random() < 0.6:
        segs += [plain(" with "), math(pick(rng, _MATH[field_key(category)]).strip("$"))]
    segs.append(plain("."))
    if refs and rng.random() < 0.4:
        prefix, label = pick(rng, list(refs))
        segs += [plain(" See "), ref(prefix, label), plain(".")]
    if cites and rng.random() < 0.3:
        segs += [plain(" Data from "), cite([pick(rng, list(cites))]), plain(".")]
    if rng.random() < 0.2:
        segs += [plain(" The "), emph("dashed"), plain(" line marks the baseline.")]
    if rng.random() < 0.1:
        segs.append(Seg(" Error bars show 95\\% intervals.", " Error bars show 95% intervals."))
    return segs


def subcaption(rng, i: int) -> list[Seg]:
    what = pick(rng, ["Input", "Prediction", "Ground truth", "Early times", "Late times", "Low noise",
                      "High noise", "Training set", "Test set"])
    if rng.random() < 0.3:
        return [plain(f"{what} "), math(f"t={i + 1}")]
    return [plain(what)]


# Section slots (where a figure sits, which biases its type) -> (title, section_kind). The kinds are the
# extractor's vocabulary (introduction, related, method, experiments, results, discussion, conclusion,
# appendix, other), and each title names its kind unambiguously.
SECTION_TITLES: dict[str, list[tuple[str, str]]] = {
    "intro": [("Introduction", "introduction")],
    "background": [("Related Work", "related"), ("Background", "related"), ("Preliminaries", "related")],
    "method": [("Method", "method"), ("Our Approach", "method"), ("Model", "method"), ("Theory", "method")],
    "results": [("Experiments", "experiments"), ("Results", "results"), ("Numerical Results", "results"),
                ("Evaluation", "experiments"), ("Observations", "experiments")],
    "discussion": [("Discussion", "discussion"), ("Conclusion", "conclusion")],
    "appendix": [("Additional Figures", "appendix"), ("Proof Details", "appendix"),
                 ("Supplementary Figures", "appendix")],
}
