"""The arXiv category taxonomy and the category -> field mapping used for text models.

Data: `taxonomy.tsv` beside this module (from arXiv/arxiv-base `arxiv/taxonomy/definitions.py`):
category id, name, archive, group, active flag, "general" flag and alias (`alt_name`).

Aliases. arXiv lists some categories under two ids; records may carry both. The canonical id is the one
arXiv files the paper under (its CATEGORY_ALIASES): math.MP -> math-ph, stat.TH -> math.ST,
math.IT -> cs.IT, q-fin.EC -> econ.GN, cs.SY -> eess.SY, cs.NA -> math.NA. Defunct archives map to
their successor (alg-geom -> math.AG, chao-dyn -> nlin.CD, cmp-lg -> cs.CL, supr-con ->
cond-mat.supr-con, ...). Archive-only ids of old papers (`astro-ph`, `cond-mat`, `q-bio`) are real,
inactive categories and stay as they are.

Fields (one text model each). The arXiv groups, with the physics group split by archive because its
archives are as large and as distinct as whole groups elsewhere:

| field     | categories                                                   |
|-----------|--------------------------------------------------------------|
| cs        | cs.*, cmp-lg                                                 |
| math      | math.*, math-ph (= math.MP), alg-geom, dg-ga, funct-an, q-alg|
| astro-ph  | astro-ph, astro-ph.*                                         |
| cond-mat  | cond-mat, cond-mat.*, mtrl-th, supr-con                      |
| hep       | hep-ex, hep-lat, hep-ph, hep-th                              |
| gr-qc     | gr-qc                                                        |
| nucl      | nucl-ex, nucl-th                                             |
| quant-ph  | quant-ph                                                     |
| nlin      | nlin.*, adap-org, chao-dyn, comp-gas, patt-sol, solv-int     |
| physics   | physics.*, acc-phys, ao-sci, atom-ph, bayes-an, chem-ph, plasm-ph |
| q-bio     | q-bio, q-bio.*                                               |
| q-fin     | q-fin.* (q-fin.EC is econ.GN, so econ)                       |
| stat      | stat.* (stat.TH is math.ST, so math)                         |
| eess      | eess.*, cs.SY (= eess.SY)                                    |
| econ      | econ.*, q-fin.EC (= econ.GN)                                 |

A field is taken from the canonical category, so an alias lands where arXiv files the paper.
"""

import csv
from dataclasses import dataclass
from importlib import resources

# arXiv's CATEGORY_ALIASES: alias -> canonical, both active.
ALIASES: dict[str, str] = {
    "math.MP": "math-ph",
    "stat.TH": "math.ST",
    "math.IT": "cs.IT",
    "q-fin.EC": "econ.GN",
    "cs.SY": "eess.SY",
    "cs.NA": "math.NA",
}

FIELDS: tuple[str, ...] = (
    "cs", "math", "astro-ph", "cond-mat", "hep", "gr-qc", "nucl", "quant-ph", "nlin", "physics",
    "q-bio", "q-fin", "stat", "eess", "econ",
)

# archive -> field, where the archive is not itself the field.
_ARCHIVE_FIELD = {
    "hep-ex": "hep", "hep-lat": "hep", "hep-ph": "hep", "hep-th": "hep",
    "nucl-ex": "nucl", "nucl-th": "nucl",
    "math-ph": "math",
}


@dataclass(frozen=True)
class Category:
    id: str
    name: str
    archive: str
    group: str  # "physics", "math", "cs", ... (arXiv's grp_ prefix dropped)
    active: bool
    general: bool  # a catch-all such as cs.OH, math.GM
    alias: str | None  # the other id this category is listed under, if any


def _load() -> dict[str, Category]:
    text = resources.files("pipeline.source").joinpath("taxonomy.tsv").read_text(encoding="utf-8")
    out: dict[str, Category] = {}
    for row in csv.DictReader(text.splitlines(), delimiter="\t"):
        group = row["group"].removeprefix("grp_")
        if group == "bad":  # arxiv-base's own test fixture, not a category
            continue
        out[row["category_id"]] = Category(
            id=row["category_id"],
            name=row["name"],
            archive=row["archive"],
            group=group,
            active=row["is_active"] == "True",
            general=row["is_general"] == "True",
            alias=row["alt_name"] or None,
        )
    return out


CATEGORIES: dict[str, Category] = _load()


def category(cat_id: str) -> Category:
    """The Category for an id (KeyError names unknown ids)."""
    try:
        return CATEGORIES[cat_id]
    except KeyError:
        raise KeyError(f"unknown arXiv category {cat_id!r}") from None


def is_known(cat_id: str) -> bool:
    return cat_id in CATEGORIES


def active_categories() -> list[str]:
    """Ids of the categories arXiv accepts submissions in (the category partitions), sorted."""
    return sorted(c.id for c in CATEGORIES.values() if c.active and c.group != "test")


def canonical(cat_id: str) -> str:
    """The id arXiv files a category under: aliases and defunct archives resolved; unknown ids unchanged."""
    if cat_id in ALIASES:
        return ALIASES[cat_id]
    cat = CATEGORIES.get(cat_id)
    if cat is not None and not cat.active and cat.alias:
        target = CATEGORIES.get(cat.alias)
        if target is not None and target.active:
            return ALIASES.get(target.id, target.id)
    return cat_id


def canonical_categories(cats: list[str]) -> list[str]:
    """Canonicalise a record's category list, primary first, duplicates (alias pairs) dropped."""
    out: list[str] = []
    for c in cats:
        c = canonical(c)
        if c not in out:
            out.append(c)
    return out


def field_of(cat_id: str) -> str:
    """The text-model field of a category (see the module docstring's table)."""
    cat_id = canonical(cat_id)
    cat = CATEGORIES.get(cat_id)
    if cat is None:
        # Unknown subclass of a known archive (e.g. a new "cs.XX"): use the archive.
        archive = cat_id.split(".", 1)[0]
        cat = next((c for c in CATEGORIES.values() if c.archive == archive), None)
        if cat is None:
            raise KeyError(f"unknown arXiv category {cat_id!r}")
    if cat.group == "test":
        raise KeyError(f"{cat_id!r} is arXiv's hidden test category, not a field")
    if cat.archive in _ARCHIVE_FIELD:
        return _ARCHIVE_FIELD[cat.archive]
    if cat.group == "physics":
        return cat.archive  # astro-ph, cond-mat, gr-qc, quant-ph, nlin, physics
    return cat.group


def categories_in_field(field: str) -> list[str]:
    """Active categories whose field is `field`."""
    if field not in FIELDS:
        raise KeyError(f"unknown field {field!r}; fields are {', '.join(FIELDS)}")
    return [c for c in active_categories() if field_of(c) == field]


def set_spec(cat_id: str) -> str | None:
    """The 2025 OAI setSpec of a category: cs.AI -> cs:cs:AI, hep-th -> physics:hep-th."""
    cat = CATEGORIES.get(cat_id)
    if cat is None:
        return None
    if "." in cat_id:
        return f"{cat.group}:" + cat_id.replace(".", ":")
    return f"{cat.group}:{cat_id}"
