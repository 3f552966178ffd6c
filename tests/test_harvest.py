"""The OAI-PMH harvester against a local OAI-PMH server (tests/oai_server.py) on 127.0.0.1, and the
metadata table it writes."""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pyarrow as pa
import pytest
from oai_server import OAIServer, make_records

from pipeline.dataset.lake import Lake
from pipeline.dataset.metadata import (
    METADATA_SCHEMA,
    compact_metadata,
    latest_per_id,
    metadata_files,
    read_metadata,
    records_from_xml,
    records_to_table,
    write_metadata,
)
from pipeline.errors import UserError
from pipeline.source.harvest import harvest, page_files, retry_after_seconds
from pipeline.source.oai import MetadataRecord, render_list_records

REPO = Path(__file__).resolve().parents[1]
INTERVAL = 0.05
FROM, UNTIL = "2023-02-01", "2023-02-28"


def _expected(records: list[MetadataRecord]) -> pa.Table:
    """The table a correct harvest gives: every record once, sorted by id."""
    return records_to_table(sorted(records, key=lambda r: r.id))


def _table(summary) -> pa.Table:
    """The metadata table a harvest's saved pages give (latest record per id, tombstones kept)."""
    records, problems = records_from_xml(page_files(summary.out_dir))
    assert not problems
    return latest_per_id(records)


def _gaps(server: OAIServer) -> list[float]:
    times = [t for t, _, _ in server.list_requests()]
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def _harvest(server: OAIServer, out: Path, **kw):
    kw.setdefault("min_interval", INTERVAL)
    kw.setdefault("backoff", 0.05)
    return harvest(server.url, out, from_date=FROM, until_date=UNTIL, **kw)


def test_harvest_pages_throttle_and_faults(tmp_path):
    records = make_records(40)
    # request 2: 503 + Retry-After 1; 4: HTTP 500; 6: dropped connection; 8: page cut in half
    faults = {2: "503", 4: "500", 6: "drop", 8: "truncate"}
    with OAIServer(records, page_size=6, faults=faults, retry_after="1") as server:
        summary = _harvest(server, tmp_path / "h", min_interval=0.15)
        log = server.list_requests()
        gaps = _gaps(server)

    table = _table(summary)
    assert table.equals(_expected(records))
    assert summary.pages == 7 and summary.records == 40 and table.num_rows == 40
    assert sum(table.column("deleted").to_pylist()) == sum(r.deleted for r in records) > 0
    assert summary.retries == 4 and summary.requests == 11 and not summary.resumed
    # Paging: the first request carries the query, later ones only verb + token.
    assert log[0][1] == {"verb": "ListRecords", "metadataPrefix": "arXiv", "from": FROM, "until": UNTIL}
    assert all(set(q) == {"verb", "resumptionToken"} for _, q, _ in log[1:])
    assert [s for _, _, s in log].count(503) == 1
    # Spacing honoured (server-side clock, allowance for thread scheduling on a loaded machine; without
    # throttling the gaps are a few ms), Retry-After too.
    assert min(gaps) >= 0.15 - 0.05
    assert gaps[1] >= 1.0 - 0.01  # the request after the 503 waited Retry-After: 1
    assert len(list((tmp_path / "h" / "pages").glob("*.xml"))) == 7
    state = json.loads((tmp_path / "h" / "state.json").read_text())
    assert state["complete"] and state["next_token"] is None and state["pages_done"] == 7


def test_harvest_by_set_and_empty_range(tmp_path):
    records = make_records(40)
    with OAIServer(records, page_size=4) as server:
        math = harvest(server.url, tmp_path / "math", from_date=FROM, until_date=UNTIL, set_spec="math",
                       min_interval=INTERVAL)
        empty = harvest(server.url, tmp_path / "empty", from_date="2030-01-01", until_date="2030-01-02",
                        min_interval=INTERVAL)
    want = [r for r in records if any(s.startswith("math") for s in r.sets)]
    assert 0 < len(want) < 40
    assert _table(math).equals(_expected(want))
    assert _table(empty).num_rows == 0 and empty.pages == 1  # noRecordsMatch is an empty result, not an error


def test_crash_and_resume_gives_the_same_table(tmp_path):
    records = make_records(40)
    with OAIServer(records, page_size=5) as server:
        clean = _harvest(server, tmp_path / "clean")

    class Crash(Exception):
        pass

    def crash_after_3(number, page):
        if number == 3:
            raise Crash

    with OAIServer(records, page_size=5) as server:
        with pytest.raises(Crash):
            _harvest(server, tmp_path / "crashed", on_page=crash_after_3)
        state = json.loads((tmp_path / "crashed" / "state.json").read_text())
        assert state["pages_done"] == 3 and state["next_token"] and not state["complete"]
        assert not (tmp_path / "crashed" / "metadata.parquet").exists()
        before = len(server.list_requests())
        resumed = _harvest(server, tmp_path / "crashed")
        second_run = server.list_requests()[before:]
    assert resumed.resumed and resumed.pages == clean.pages == 8 and resumed.pages_this_run == 5
    assert second_run[0][1]["resumptionToken"] == state["next_token"]  # continued, not restarted
    assert len(second_run) == 5
    assert _table(resumed).equals(_table(clean))


def test_killed_process_resumes(tmp_path):
    """SIGKILL a real `arxiv-forge harvest` process halfway, rerun it, compare with a clean harvest."""
    records = make_records(40)
    out = tmp_path / "killed"
    with OAIServer(records, page_size=4) as server:
        cmd = [sys.executable, "-m", "pipeline.cli", "harvest", "--from", FROM, "--until", UNTIL,
               "--out", str(out), "--endpoint", server.url, "--min-interval", "0.15"]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        state_file = out / "state.json"
        deadline = time.monotonic() + 20
        pages_at_kill = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if state_file.exists():
                pages_at_kill = json.loads(state_file.read_text())["pages_done"]
                if pages_at_kill >= 3:
                    break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert 3 <= pages_at_kill < 10, "the process should have been killed halfway"
        resumed = harvest(server.url, out, from_date=FROM, until_date=UNTIL, min_interval=INTERVAL)
    assert resumed.resumed and resumed.pages == 10
    assert not list(out.rglob("*.tmp"))
    assert _table(resumed).equals(_expected(records))


def test_expired_token_restarts_the_list(tmp_path):
    records = make_records(30)
    with OAIServer(records, page_size=5) as server:
        def expire_after_2(number, page):
            if number == 2:
                server.expire_tokens()  # like arXiv's tokens at UTC midnight

        summary = _harvest(server, tmp_path / "h", on_page=expire_after_2)
        log = server.list_requests()
    assert summary.restarts == 1
    assert summary.pages == 8  # 2 pages, then the full list of 6 again
    assert sum(1 for _, q, _ in log if "metadataPrefix" in q) == 2
    table = _table(summary)
    assert table.equals(_expected(records))  # repeats removed, nothing lost


def test_tokens_that_always_expire_stop_after_a_few_restarts(tmp_path):
    with OAIServer(make_records(20), page_size=5) as server:
        with pytest.raises(UserError, match="rejected 4 times"):
            _harvest(server, tmp_path / "h", on_page=lambda number, page: server.expire_tokens())
        requests = len(server.list_requests())
    assert requests == 8  # 4 first pages, 4 rejected tokens: no endless loop


def test_retries_exhausted_is_a_clear_error_and_state_survives(tmp_path):
    records = make_records(20)
    with OAIServer(records, page_size=5, faults={n: "500" for n in range(2, 10)}) as server:
        with pytest.raises(UserError, match="failed 3 times.*rerun the same command"):
            _harvest(server, tmp_path / "h", max_retries=2)
        state = json.loads((tmp_path / "h" / "state.json").read_text())
        assert state["pages_done"] == 1 and state["next_token"]
        server.faults.clear()
        summary = _harvest(server, tmp_path / "h")
    assert summary.resumed and _table(summary).equals(_expected(records))


def test_user_errors(tmp_path):
    with pytest.raises(UserError, match="YYYY-MM-DD"):
        harvest("http://127.0.0.1:9/oai", tmp_path, from_date="2023/01/01", until_date=None)
    with pytest.raises(UserError, match="http"):
        harvest("ftp://example.org/oai", tmp_path, from_date=None, until_date=None)
    records = make_records(5)
    with OAIServer(records) as server:
        _harvest(server, tmp_path / "h")
        with pytest.raises(UserError, match="other parameters"):
            harvest(server.url, tmp_path / "h", from_date="2023-01-01", until_date=None, min_interval=INTERVAL)
        with pytest.raises(UserError, match="HTTP 404"):
            harvest(server.url, tmp_path / "x",
                    from_date=None, until_date=None, min_interval=INTERVAL, opener=_NotFoundOpener())
        with pytest.raises(UserError, match="cannotDisseminateFormat"):
            harvest(server.url, tmp_path / "raw", from_date=None, until_date=None, metadata_prefix="oai_dc",
                    min_interval=INTERVAL)


class _NotFoundOpener:
    def open(self, req, timeout=None):
        import urllib.error

        raise urllib.error.HTTPError(req.full_url, 404, "Not Found", {}, None)


def test_retry_after_values():
    assert retry_after_seconds("5", None) == 5.0
    assert retry_after_seconds(None, 2.0) == 2.0
    assert retry_after_seconds("soon", None) is None
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after_seconds(soon, None) <= 31
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(past, None) == 0.0


def test_cli_harvest(tmp_path, capsys):
    from pipeline.cli import main

    records = make_records(12)
    with OAIServer(records, page_size=5) as server:
        rc = main(["harvest", "--from", FROM, "--until", UNTIL, "--out", str(tmp_path / "h"), "--endpoint",
                   server.url, "--min-interval", str(INTERVAL), "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 12 and summary["pages"] == 3 and summary["table"].endswith("metadata.parquet")
    assert main(["harvest", "--from", "yesterday", "--out", str(tmp_path / "x")]) == 2


# ---------------------------------------------------------------- the table


def test_saved_pages_to_the_lake_day_by_day(tmp_path):
    """The sample bucket's metadata directory goes through the same functions; a later day's file wins."""
    records = make_records(25)
    pages = tmp_path / "bucket" / "metadata"
    pages.mkdir(parents=True)
    for k in range(0, 25, 10):
        token = f"t{k}" if k + 10 < 25 else None
        (pages / f"ListRecords_{k // 10:03d}.xml").write_bytes(render_list_records(records[k:k + 10],
                                                                                   resumption_token=token))
    (pages / "broken.xml").write_bytes(b"<OAI-PMH")
    lake = Lake(tmp_path / "data")
    table, problems = records_from_xml([pages])
    assert [p for p, _ in problems] == [str(pages / "broken.xml")]
    assert write_metadata(lake, "2023-02-28", table) == 25
    assert read_metadata(lake, include_deleted=True).equals(_expected(records))
    # The nightly step: a new day's page, stored beside the old day (which it does not rewrite).
    newer = [_rec(records[0].id, "2024-01-01", "revised title"), _rec("2401.00001", "2024-01-01", "brand new")]
    assert write_metadata(lake, "2024-01-01", newer) == 2
    assert [f.key for f in metadata_files(lake)] == ["metadata/harvest/2023-02-28.parquet",
                                                     "metadata/harvest/2024-01-01.parquet"]
    full = read_metadata(lake, include_deleted=True)
    titles = dict(zip(*full.select(["id", "title"]).to_pydict().values(), strict=True))
    assert full.num_rows == 26 and titles[records[0].id] == "revised title" and titles["2401.00001"] == "brand new"
    # Compaction merges the files into one and changes nothing a reader sees.
    assert compact_metadata(lake) == 2
    assert [f.key.split("/")[1] for f in metadata_files(lake)] == ["compacted"]
    assert read_metadata(lake, include_deleted=True).equals(full)


def _rec(rid: str, datestamp: str, title: str, updated: str | None = None, deleted: bool = False) -> MetadataRecord:
    if deleted:
        return MetadataRecord.deleted_record(rid, datestamp)
    return MetadataRecord(rid, "2020-01-01", updated, title, ["A B"], ["cs.LG"], "cs.LG", "abs", None, None, None,
                          None, None, None, datestamp, ["cs:cs:LG"])


def test_latest_record_wins_across_days_and_reruns(tmp_path):
    lake = Lake(tmp_path / "data")
    write_metadata(lake, "d1", [_rec("1501.00010", "2020-02-01", "old"), _rec("0704.0010", "2020-01-01", "x")])
    write_metadata(lake, "d2", [_rec("1501.00010", "2021-05-01", "new", updated="2021-05-01")])
    write_metadata(lake, "d3", [_rec("1501.00010", "2020-03-01", "stale")])  # older page arriving late
    write_metadata(lake, "d4", [_rec("math/0601001", "2020-01-01", "m")])
    once = read_metadata(lake, include_deleted=True)
    write_metadata(lake, "d2", [_rec("1501.00010", "2021-05-01", "new", updated="2021-05-01")])  # day re-run
    assert read_metadata(lake, include_deleted=True).equals(once)  # idempotent
    rows = {r["id"]: r for r in once.to_pylist()}
    assert list(rows) == ["0704.0010", "1501.00010", "math/0601001"]  # ids as strings, sorted
    assert rows["1501.00010"]["title"] == "new"
    # A deletion wins over the older record and stays as a tombstone; a stale page cannot revive it.
    write_metadata(lake, "d5", [_rec("0704.0010", "2022-01-01", "", deleted=True)])
    write_metadata(lake, "d6", [_rec("0704.0010", "2021-01-01", "revived?")])
    assert read_metadata(lake).column("id").to_pylist() == ["1501.00010", "math/0601001"]
    full = read_metadata(lake, include_deleted=True)
    assert full.schema.equals(METADATA_SCHEMA) and full.num_rows == 3
    assert not [p for p in (tmp_path / "data").rglob("*") if p.name.startswith(".")]  # no temp files left


def test_reading_one_month_reads_only_its_ids(tmp_path):
    lake = Lake(tmp_path / "data")
    ids = ["2301.00001", "2301.00002", "2302.00001", "hep-th/9108001", "math.AG/9108002", "hep-th/9109001"]
    write_metadata(lake, "d1", [_rec(i, "2023-03-01", i) for i in ids])
    assert read_metadata(lake, yymm=["2301"]).column("id").to_pylist() == ["2301.00001", "2301.00002"]
    assert read_metadata(lake, yymm=["9108"]).column("id").to_pylist() == ["hep-th/9108001", "math.AG/9108002"]
    assert read_metadata(Lake(tmp_path / "empty")).num_rows == 0


def test_one_month_of_a_large_table_prunes_to_its_row_groups(tmp_path):
    """chunk_extract asks for one month's ids: Parquet statistics leave out every row group of other months."""
    import pyarrow.dataset as pads

    from pipeline.dataset.metadata import _month_filter

    lake = Lake(tmp_path / "data")
    months = [f"{y:02d}{m:02d}" for y in range(10, 15) for m in range(1, 13)]  # 60 months x 1,000 papers
    write_metadata(lake, "bulk", [_rec(f"{mm}.{i:05d}", "2020-01-01", "t") for mm in months for i in range(1000)])
    (f,) = metadata_files(lake)
    d = pads.dataset(lake.path(f.key), format="parquet")
    groups = [g for frag in d.get_fragments() for g in frag.split_by_row_group()]
    wanted = [g for frag in d.get_fragments() for g in frag.split_by_row_group(_month_filter(["1206"]))]
    assert len(groups) == 6 and len(wanted) == 1
    assert read_metadata(lake, yymm=["1206"]).num_rows == 1000
