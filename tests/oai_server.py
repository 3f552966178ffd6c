"""A local OAI-PMH server for tests: arXiv-style ListRecords paging, with scripted faults.

Serves `records` (MetadataRecord) filtered by from/until (datestamp) and set (setSpec prefix), in pages
of `page_size`, with resumption tokens like arXiv's pre-2025 server (`<token>` text, cursor and
completeListSize). Runs a threaded `http.server` on 127.0.0.1 on a free port.

Faults are scripted per request number (1-based, counting every request that reaches the server):
    "503"       HTTP 503 with Retry-After (the `retry_after` value)
    "500"       HTTP 500
    "drop"      close the connection without answering
    "truncate"  HTTP 200 with half of the page's bytes
Calling `expire_tokens()` makes every token issued so far answer `badResumptionToken`.
Every request is logged as (monotonic time, query dict, status) in `server.log`.
"""

import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pipeline.source.oai import MetadataRecord, render_error, render_list_records


class OAIServer:
    def __init__(self, records: list[MetadataRecord], *, page_size: int = 5, faults: dict[int, str] | None = None,
                 retry_after: str = "1"):
        self.records = sorted(records, key=lambda r: (r.datestamp or "", r.id))
        self.page_size = page_size
        self.faults = dict(faults or {})
        self.retry_after = retry_after
        self.log: list[tuple[float, dict[str, str], int]] = []
        self._generation = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/oai"

    def __enter__(self) -> "OAIServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def expire_tokens(self) -> None:
        with self._lock:
            self._generation += 1

    def list_requests(self) -> list[tuple[float, dict[str, str], int]]:
        with self._lock:
            return list(self.log)

    # ------------------------------------------------------------ responses

    def _select(self, query: dict[str, str]) -> list[MetadataRecord]:
        out = []
        for r in self.records:
            ds = r.datestamp or ""
            if query.get("from") and ds < query["from"]:
                continue
            if query.get("until") and ds > query["until"]:
                continue
            spec = query.get("set")
            if spec and not any(s == spec or s.startswith(spec + ":") for s in r.sets):
                continue
            out.append(r)
        return out

    def respond(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes | None]:
        """(status, headers, body); body None means drop the connection."""
        arrived = time.monotonic()
        with self._lock:
            number = len(self.log) + 1
            fault = self.faults.get(number)
            generation = self._generation
        status, headers, body = self._answer(query, generation)
        if fault == "503":
            status, headers, body = 503, {"Retry-After": self.retry_after}, b"busy, retry later"
        elif fault == "500":
            status, headers, body = 500, {}, b"internal error"
        elif fault == "drop":
            body = None
        elif fault == "truncate":  # announce the whole page, send half, close
            headers = {**headers, "Content-Length": str(len(body))}
            body = body[: len(body) // 2]
        with self._lock:
            self.log.append((arrived, query, status if body is not None else -1))
        return status, headers, body

    def _answer(self, query: dict[str, str], generation: int) -> tuple[int, dict[str, str], bytes]:
        if query.get("verb") != "ListRecords":
            return 200, {}, render_error("badVerb", "only ListRecords here", request_params=query)
        if "resumptionToken" in query:
            if set(query) != {"verb", "resumptionToken"}:
                return 200, {}, render_error("badArgument", "resumptionToken is exclusive", request_params=query)
            try:
                gen, offset, from_, until, set_ = query["resumptionToken"].split("|")
                base = {"from": from_, "until": until, "set": set_}
                offset_i = int(offset)
            except ValueError:
                return 200, {}, render_error("badResumptionToken", "malformed", request_params=query)
            if int(gen) != generation:
                return 200, {}, render_error("badResumptionToken", "expired", request_params=query)
        else:
            if query.get("metadataPrefix") != "arXiv":
                return 200, {}, render_error("cannotDisseminateFormat", "arXiv only", request_params=query)
            base = {k: query.get(k, "") for k in ("from", "until", "set")}
            offset_i = 0
        selected = self._select(base)
        if not selected:
            return 200, {}, render_error("noRecordsMatch", "nothing in range", request_params=query)
        page = selected[offset_i: offset_i + self.page_size]
        nxt = offset_i + self.page_size
        token = f"{generation}|{nxt}|{base['from']}|{base['until']}|{base['set']}" if nxt < len(selected) else None
        body = render_list_records(page, resumption_token=token, complete_list_size=len(selected),
                                   cursor=offset_i, request_url=self.url, request_params=query)
        return 200, {}, body

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                parsed = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parsed.query))
                status, headers, body = server.respond(query)
                if body is None:
                    self.close_connection = True
                    return  # no status line: the client sees the connection drop
                self.send_response(status)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                headers.setdefault("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep test output quiet
                pass

        return Handler


def make_records(n: int = 40, *, deleted_every: int = 9) -> list[MetadataRecord]:
    """Deterministic records across groups, with new and old-style ids, some updated, some deleted."""
    from pipeline.source.oai import default_sets

    cats = [["cs.LG", "stat.ML"], ["math.AG"], ["hep-th", "gr-qc"], ["astro-ph.GA"], ["cond-mat.str-el"],
            ["q-bio.NC", "cs.NE"], ["math.IT", "cs.IT"], ["quant-ph"]]
    out = []
    for i in range(n):
        rid = f"math/06{i:05d}" if i % 7 == 3 else f"2301.{i * 10:05d}"  # 2301.00010 must not become 2301.0001
        day = 1 + i % 28
        if i % deleted_every == deleted_every - 1:
            out.append(MetadataRecord.deleted_record(rid, f"2023-02-{day:02d}", ["cs"]))
            continue
        c = cats[i % len(cats)]
        out.append(MetadataRecord(
            id=rid, created=f"2023-01-{day:02d}", updated=f"2023-02-{day:02d}" if i % 4 == 0 else None,
            title=f"Paper {i}: <b>bold</b> & \"quoted\" — ünïcode",
            authors=[f"Author{i} A. Keyname", "Jan van der Berg", "William R. Smith Jr."][: 1 + i % 3],
            categories=c, primary_category=c[0], abstract=" ".join([f"We study $x_{i}^2 < y$ & more."] * 3),
            comments=f"{i} pages" if i % 2 else None, journal_ref="Phys. Rev. D 1 (2023)" if i % 5 == 0 else None,
            doi=f"10.1000/{i}" if i % 3 == 0 else None, license="http://creativecommons.org/licenses/by/4.0/",
            msc_class="14J60" if c[0].startswith("math") else None, acm_class="I.2.6" if c[0] == "cs.LG" else None,
            datestamp=f"2023-02-{day:02d}", sets=default_sets(c),
        ))
    return out
