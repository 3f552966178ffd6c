"""The arXiv taxonomy table, aliases and the category -> field mapping."""

import json

import pytest

from pipeline.cli import main
from pipeline.source import taxonomy as tx


def test_table_has_every_category():
    assert len(tx.CATEGORIES) == 184  # arxiv-base's 185 rows minus its "bad-arch.bad-cat" fixture
    cs_ai = tx.category("cs.AI")
    assert (cs_ai.name, cs_ai.archive, cs_ai.group, cs_ai.active) == ("Artificial Intelligence", "cs", "cs", True)
    assert tx.category("astro-ph").active is False and tx.category("astro-ph").group == "physics"
    assert tx.category("cs.OH").general
    groups = {c.group for c in tx.CATEGORIES.values()}
    assert groups == {"physics", "math", "cs", "q-bio", "q-fin", "stat", "eess", "econ", "test"}
    with pytest.raises(KeyError, match="unknown arXiv category"):
        tx.category("cs.XX")


def test_active_categories():
    active = tx.active_categories()
    assert len(active) == 155 and active == sorted(active)
    assert {"cs.LG", "hep-th", "astro-ph.GA", "math.IT", "econ.GN", "q-fin.EC"} <= set(active)
    assert not {"astro-ph", "alg-geom", "cmp-lg", "test.dis-nn"} & set(active)


def test_every_alias_points_at_a_real_category():
    for cat in tx.CATEGORIES.values():
        if cat.alias:
            assert cat.alias in tx.CATEGORIES, cat.id


@pytest.mark.parametrize("alias, canonical", [
    ("math.IT", "cs.IT"), ("q-fin.EC", "econ.GN"), ("stat.TH", "math.ST"), ("math.MP", "math-ph"),
    ("cs.SY", "eess.SY"), ("cs.NA", "math.NA"),
    ("alg-geom", "math.AG"), ("chao-dyn", "nlin.CD"), ("cmp-lg", "cs.CL"), ("supr-con", "cond-mat.supr-con"),
    ("mtrl-th", "cond-mat.mtrl-sci"), ("bayes-an", "physics.data-an"),
    # canonical ids and archive-only ids of old papers stay as they are
    ("cs.IT", "cs.IT"), ("hep-th", "hep-th"), ("astro-ph", "astro-ph"), ("cond-mat", "cond-mat"), ("q-bio", "q-bio"),
    ("nonsense", "nonsense"),
])
def test_canonical(alias, canonical):
    assert tx.canonical(alias) == canonical


def test_canonical_categories_drops_alias_duplicates():
    assert tx.canonical_categories(["math.IT", "cs.IT", "math.PR"]) == ["cs.IT", "math.PR"]
    assert tx.canonical_categories(["math-ph", "math.MP"]) == ["math-ph"]


@pytest.mark.parametrize("cat, field", [
    ("cs.LG", "cs"), ("math.AG", "math"), ("math-ph", "math"), ("math.MP", "math"), ("stat.ML", "stat"),
    ("stat.TH", "math"), ("astro-ph.GA", "astro-ph"), ("astro-ph", "astro-ph"), ("cond-mat", "cond-mat"),
    ("cond-mat.str-el", "cond-mat"), ("supr-con", "cond-mat"), ("hep-th", "hep"), ("hep-ex", "hep"),
    ("gr-qc", "gr-qc"), ("nucl-th", "nucl"), ("quant-ph", "quant-ph"), ("nlin.CD", "nlin"), ("chao-dyn", "nlin"),
    ("physics.optics", "physics"), ("acc-phys", "physics"), ("q-bio", "q-bio"), ("q-bio.NC", "q-bio"),
    ("q-fin.ST", "q-fin"), ("q-fin.EC", "econ"), ("econ.EM", "econ"), ("eess.SP", "eess"), ("cs.SY", "eess"),
    ("cmp-lg", "cs"), ("alg-geom", "math"),
    ("cs.ZZ", "cs"),  # a future subclass of a known archive
])
def test_field_of(cat, field):
    assert tx.field_of(cat) == field


def test_fields_cover_active_categories():
    seen = {tx.field_of(c) for c in tx.active_categories()}
    assert seen == set(tx.FIELDS)
    for field in tx.FIELDS:
        cats = tx.categories_in_field(field)
        assert cats and all(tx.field_of(c) == field for c in cats)
    with pytest.raises(KeyError):
        tx.field_of("zzz")
    with pytest.raises(KeyError):
        tx.field_of("test.soft")
    with pytest.raises(KeyError):
        tx.categories_in_field("biology")


def test_set_spec():
    assert tx.set_spec("cs.AI") == "cs:cs:AI"
    assert tx.set_spec("hep-th") == "physics:hep-th"
    assert tx.set_spec("astro-ph.EP") == "physics:astro-ph:EP"
    assert tx.set_spec("math.MP") == "math:math:MP" and tx.set_spec("math-ph") == "physics:math-ph"
    assert tx.set_spec("nope") is None


def test_packaged_table_matches_research_table(real_fixtures):
    research = real_fixtures.parents[1] / "research" / "arxiv_taxonomy.tsv"
    if not research.is_file():
        pytest.skip(f"{research} not present")
    from importlib import resources

    packaged = resources.files("pipeline.source").joinpath("taxonomy.tsv").read_text()
    assert packaged == research.read_text()


def test_cli_taxonomy(capsys):
    assert main(["taxonomy", "--field", "hep", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == ["hep-ex", "hep-lat", "hep-ph", "hep-th"]
    assert all(r["field"] == "hep" and r["group"] == "physics" for r in rows)
    assert main(["taxonomy", "--all"]) == 0
    out = capsys.readouterr().out
    assert "alg-geom" in out and "[inactive]" in out
    assert main(["taxonomy", "--field", "biology"]) == 2
