"""OAI-PMH parsing and rendering: real responses, our own pages, arXivRaw, deleted and odd records."""

import gzip
import json

import pytest
from oai_server import make_records

from pipeline.cli import main
from pipeline.source.oai import (
    JSON_FIELDS,
    MetadataRecord,
    OAIError,
    OAIParseError,
    parse_page,
    parse_response,
    read_records,
    render_arxiv_metadata,
    render_error,
    render_get_record,
    render_list_records,
    split_author,
    split_raw_authors,
)

OAI_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
    "<responseDate>2016-06-29T14:29:10Z</responseDate>\n"
    '<request verb="ListRecords" metadataPrefix="arXiv">http://export.arxiv.org/oai2</request>\n'
)


def test_real_getrecord_responses(real_fixtures):
    (rec1,), token1 = parse_response((real_fixtures / "sample_arxiv_record1.xml").read_bytes())
    (rec2,), token2 = parse_response((real_fixtures / "sample_arxiv_record2.xml").read_bytes())
    assert token1 is None and token2 is None
    assert rec1.id == "1512.07978" and rec1.datestamp == "2015-12-29" and rec1.created == "2015-12-25"
    assert rec1.updated is None
    assert rec1.authors == ["Teresa Maria Montaruli for the IceCube Collaboration"]
    assert rec1.categories == ["astro-ph.HE"] and rec1.primary_category == "astro-ph.HE"
    assert rec1.sets == ["physics:astro-ph"]
    assert rec1.license == "http://arxiv.org/licenses/nonexclusive-distrib/1.0/"
    # Hard line breaks and leading spaces of the real abstract are gone.
    assert rec1.abstract.startswith("In this contribution we summarize the selected highlights of IceCube in the domain")
    assert "\n" not in rec1.abstract and "  " not in rec1.abstract
    assert rec1.comments.endswith("Nuclear and Particle Physics Proceedings (2016)")
    assert rec2.id == "1603.00997" and rec2.categories == ["hep-lat", "nucl-th"]
    assert rec2.primary_category == "hep-lat" and rec2.sets == ["physics:hep-lat", "physics:nucl-th"]
    assert rec2.title == "Axial U(1) symmetry in the chiral symmetric phase of 2-flavor QCD at finite temperature"
    assert '"The 8th International Workshop on Chiral Dynamics, CD2015"' in rec2.comments  # &quot; decoded
    assert "$\\gamma > 2$" in rec2.abstract  # &gt; decoded, TeX kept
    assert rec2.journal_ref == "PoS(CD15) (2015) 045" and rec2.doi is None


def test_rendered_page_round_trips_with_paging_attributes():
    records = make_records(30)
    xml = render_list_records(records, resumption_token="788421|1001", complete_list_size=1200, cursor=1000,
                              expiration_date="2025-01-02T00:00:00Z")
    page = parse_page(xml)
    assert page.records == records
    assert page.resumption_token == "788421|1001"
    assert (page.cursor, page.complete_list_size, page.expiration_date) == (1000, 1200, "2025-01-02T00:00:00Z")
    # Last page: an empty <resumptionToken/> means done.
    assert parse_response(render_list_records(records[:2], resumption_token=None)) == (records[:2], None)


def test_rendered_page_looks_like_arxiv():
    rec = make_records(1)[0]
    xml = render_list_records([rec], resumption_token=None).decode()
    assert '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"' in xml
    assert "<identifier>oai:arXiv.org:2301.00000</identifier>" in xml
    assert '<arXiv xmlns="http://arxiv.org/OAI/arXiv/"' in xml
    assert "<categories>cs.LG stat.ML</categories>" in xml
    assert "<setSpec>cs:cs:LG</setSpec>" in xml and "<setSpec>stat:stat:ML</setSpec>" in xml
    assert "<author><keyname>Keyname</keyname><forenames>Author0 A.</forenames></author>" in xml
    assert "&lt;b&gt;bold&lt;/b&gt; &amp;" in xml


def test_ids_stay_strings():
    ids = ["0704.0010", "1501.00010", "math/0601001", "hep-th/9901001"]
    recs = [MetadataRecord(i, "2007-04-01", None, "t", [], ["math.AG"], "math.AG", "a", None, None, None, None,
                           None, None, "2007-05-01", []) for i in ids]
    parsed, _ = parse_response(render_list_records(recs, resumption_token=None))
    assert [r.id for r in parsed] == ids
    assert all(isinstance(r.id, str) for r in parsed)


def test_author_split_and_join_are_inverse():
    assert split_author("Waldyr A. Rodrigues Jr") == ("Rodrigues", "Waldyr A.", "Jr")
    assert split_author("Planck") == ("Planck", None, None)
    assert split_author("R. W. IV") == ("W.", "R.", "IV")
    for name in ["Jan van der Berg", "Planck Collaboration", "R. W. IV", "A. B. Smith Jr."]:
        rec = MetadataRecord.deleted_record("1", None)
        rec.deleted, rec.authors = False, [name]
        assert parse_page(render_arxiv_metadata(rec, standalone=True).encode()).records[0].authors == [name]


def test_real_author_structure_with_suffix():
    xml = OAI_HEAD + """<GetRecord><record><header><identifier>oai:arXiv.org:0901.0001</identifier>
<datestamp>2009-01-05</datestamp><setSpec>math</setSpec></header><metadata>
<arXiv xmlns="http://arxiv.org/OAI/arXiv/"><id>0901.0001</id><created>2009-01-01</created>
<updated>2009-03-01</updated><authors><author><keyname>W.</keyname><forenames>R.</forenames><suffix>IV</suffix>
<affiliation>Somewhere</affiliation></author><author><keyname>Planck Collaboration</keyname></author></authors>
<title>A   title
   over lines</title><categories>math.AG math.IT cs.IT</categories><msc-class>14J60</msc-class>
<acm-class>F.2.2</acm-class><doi>10.1/x</doi><abstract>  A.
</abstract></arXiv></metadata></record></GetRecord></OAI-PMH>"""
    (rec,) = parse_page(xml.encode()).records
    assert rec.authors == ["R. W. IV", "Planck Collaboration"]
    assert rec.title == "A title over lines" and rec.abstract == "A."
    assert rec.updated == "2009-03-01" and rec.msc_class == "14J60" and rec.acm_class == "F.2.2"
    assert rec.categories == ["math.AG", "math.IT", "cs.IT"] and rec.primary_category == "math.AG"


def test_record_without_arxiv_namespace_declaration():
    # As in widely copied fixtures (hepcrawl sample_arxiv_record0.xml): <arXiv> has no xmlns, so its
    # children fall into the OAI namespace. We match by local name and read it like a real record.
    xml = OAI_HEAD + """<ListRecords><record><header><identifier>oai:arXiv.org:0801.4782</identifier>
<datestamp>2008-02-01</datestamp><setSpec>physics:hep-ph</setSpec></header><metadata>
<arXiv xsi:schemaLocation="http://arxiv.org/OAI/arXiv/ http://arxiv.org/OAI/arXiv.xsd">
<id>0801.4782</id><created>2008-01-30</created><authors><author><keyname>Smith</keyname>
<forenames>John</forenames></author></authors><title>No namespace</title><categories>hep-ph</categories>
<abstract>Text.</abstract></arXiv></metadata></record><resumptionToken/></ListRecords></OAI-PMH>"""
    page = parse_page(xml.encode())
    assert [(r.id, r.title, r.authors, r.categories) for r in page.records] == [
        ("0801.4782", "No namespace", ["John Smith"], ["hep-ph"])]
    assert page.resumption_token is None


def test_deleted_record_has_no_metadata():
    xml = OAI_HEAD + """<ListRecords><record><header status="deleted">
<identifier>oai:arXiv.org:cs/0112017</identifier><datestamp>2019-05-01</datestamp><setSpec>cs</setSpec>
</header></record><resumptionToken cursor="0" completeListSize="1"/></ListRecords></OAI-PMH>"""
    (rec,) = parse_page(xml.encode()).records
    assert rec.deleted and rec.id == "cs/0112017" and rec.datestamp == "2019-05-01" and rec.sets == ["cs"]
    assert rec.title == "" and rec.categories == [] and rec.primary_category is None
    # The renderer writes deleted records the same way.
    again = parse_page(render_list_records([rec], resumption_token=None)).records
    assert again == [rec]
    assert b"<metadata>" not in render_list_records([rec], resumption_token=None)


def test_record_without_metadata_and_not_deleted_is_an_error():
    xml = OAI_HEAD + """<ListRecords><record><header><identifier>oai:arXiv.org:1</identifier></header>
</record></ListRecords></OAI-PMH>"""
    with pytest.raises(OAIParseError, match="no metadata"):
        parse_page(xml.encode())


ARXIV_RAW = OAI_HEAD + """<GetRecord><record><header><identifier>oai:arXiv.org:0806.4129</identifier>
<datestamp>2010-03-02</datestamp><setSpec>physics:math-ph</setSpec><setSpec>math:math:MP</setSpec></header>
<metadata><arXivRaw xmlns="http://arxiv.org/OAI/arXivRaw/"><id>0806.4129</id>
<submitter>Roldao da Rocha</submitter>
<version version="v1"><date>Wed, 25 Jun 2008 15:29:38 GMT</date><size>14kb</size><source_type>D</source_type></version>
<version version="v2"><date>Mon, 1 Mar 2010 10:00:00 GMT</date><size>15kb</size></version>
<title>Generalized Weyl
  spinors</title><authors>Roldao da Rocha (UFABC, Santo Andre), Waldyr A. Rodrigues Jr and J. Vaz</authors>
<categories>math-ph math.MP</categories><comments>7 pages</comments><journal-ref>J. Phys. A 41 (2008)</journal-ref>
<license>http://arxiv.org/licenses/nonexclusive-distrib/1.0/</license><abstract>  We show that
 \\'e $x$.
</abstract></arXivRaw></metadata></record></GetRecord></OAI-PMH>"""


def test_arxiv_raw_format():
    (rec,) = parse_page(ARXIV_RAW.encode()).records
    assert rec.id == "0806.4129" and rec.created == "2008-06-25" and rec.updated == "2010-03-01"
    assert rec.authors == ["Roldao da Rocha", "Waldyr A. Rodrigues Jr", "J. Vaz"]
    assert rec.title == "Generalized Weyl spinors" and rec.abstract == "We show that \\'e $x$."
    assert rec.categories == ["math-ph", "math.MP"] and rec.primary_category == "math-ph"
    assert rec.sets == ["physics:math-ph", "math:math:MP"] and rec.journal_ref == "J. Phys. A 41 (2008)"


def test_split_raw_authors_nested_affiliations():
    assert split_raw_authors("A. Smith (MIT, Dept. (Physics)), B. Jones, and C. Wu") == ["A. Smith", "B. Jones", "C. Wu"]
    assert split_raw_authors("") == []


def test_bare_record_files():
    rec = make_records(3)[2]
    bare = render_arxiv_metadata(rec, standalone=True).encode()
    (got,) = parse_page(bare).records
    assert got.id == rec.id and got.title == rec.title and got.datestamp is None and got.sets == []
    get_record = render_get_record(rec)
    assert parse_page(get_record).records == [rec]
    assert parse_page(get_record).verb == "GetRecord"


def test_oai_errors():
    assert parse_response(render_error("noRecordsMatch", "empty")) == ([], None)
    with pytest.raises(OAIError) as err:
        parse_page(render_error("badResumptionToken", "expired"))
    assert err.value.code == "badResumptionToken" and "expired" in str(err.value)
    with pytest.raises(OAIError, match="badArgument"):
        parse_page(render_error("badArgument", "from is not a date"))


def test_hostile_xml_is_refused():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            b"<arXiv><id>&lol2;</id></arXiv>")
    with pytest.raises(OAIParseError, match="DTD"):
        parse_page(bomb)
    with pytest.raises(OAIParseError, match="well-formed"):
        parse_page(b"<OAI-PMH><ListRecords><record>")
    with pytest.raises(OAIParseError, match="unexpected root"):
        parse_page(b"<html><body>Service unavailable</body></html>")
    with pytest.raises(OAIParseError, match="unsupported metadata format"):
        parse_page(OAI_HEAD.encode() + b"<GetRecord><record><header><identifier>x</identifier></header>"
                   b"<metadata><dc/></metadata></record></GetRecord></OAI-PMH>")


def test_read_records_from_directory_keeps_going_past_bad_files(tmp_path):
    recs = make_records(12)
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "00001.xml").write_bytes(render_list_records(recs[:6], resumption_token="t"))
    (tmp_path / "pages" / "00002.xml.gz").write_bytes(gzip.compress(render_list_records(recs[6:], resumption_token=None)))
    (tmp_path / "pages" / "00003.xml").write_bytes(b"<OAI-PMH><trunc")
    (tmp_path / "pages" / "notes.txt").write_text("ignored")
    got, problems = read_records([tmp_path])
    assert got == recs
    assert len(problems) == 1 and problems[0][0].endswith("00003.xml")


def test_cli_metadata_json_fields(tmp_path, capsys):
    recs = make_records(10)  # includes one deleted record (index 8)
    page = tmp_path / "p.xml"
    page.write_bytes(render_list_records(recs, resumption_token=None))
    assert main(["metadata", str(page), "--json"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in rows] == [r.id for r in recs if not r.deleted]
    assert all(list(r) == list(JSON_FIELDS) for r in rows)
    assert rows[0]["authors"] == ["Author0 A. Keyname"] and rows[0]["categories"] == ["cs.LG", "stat.ML"]
    assert "1 deleted" in err
    assert main(["metadata", str(page)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 9 and table[0].startswith("2301.00000") and "cs.LG" in table[0]
    assert main(["metadata", str(tmp_path / "missing.xml")]) == 2


def test_gzipped_page_and_gzip_bomb_cap(monkeypatch):
    import pipeline.source.oai as oai

    page = render_list_records(make_records(5), resumption_token=None)
    assert parse_page(gzip.compress(page)).records == make_records(5)
    monkeypatch.setattr(oai, "MAX_XML_BYTES", 1000)
    with pytest.raises(OAIParseError, match="expands beyond"):
        parse_page(gzip.compress(page))
    with pytest.raises(OAIParseError):
        parse_page(gzip.compress(page)[:200])  # truncated gzip: cut XML
