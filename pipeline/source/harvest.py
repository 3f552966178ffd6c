"""OAI-PMH harvester for arXiv metadata: ListRecords by date range and set, crash-resumable.

Politeness (arXiv's terms: one request every 3 s, one connection): requests are spaced at least
`min_interval` seconds apart on the monotonic clock, retries included. HTTP 503/429 with Retry-After
(seconds or an HTTP date) wait that long; other 5xx, dropped connections, timeouts and truncated pages
are retried with exponential backoff, at most `max_retries` times per request.

Crash safety: every page's raw XML is saved atomically as `out_dir/pages/NNNNN.xml`, then
`out_dir/state.json` (the parameters, the next resumption token, pages done) is replaced atomically.
A restart with the same parameters continues from the saved token. arXiv's tokens expire at the next
UTC midnight; on `badResumptionToken` the list is requested again from the start with the same
parameters, into new page numbers, and the table build's dedupe removes the repeats.

The harvester hands out pages; storing their records is the caller's job (`pipeline.dataset.metadata`:
the `arxiv_metadata` asset writes them to the lake, `arxiv-forge harvest` to a file beside the pages).
"""

import email.utils
import http.client
import json
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from forge_common import ProgressLog, atomic_write
from pipeline.errors import UserError
from pipeline.source.oai import DEFAULT_ENDPOINT, OAIError, OAIPage, OAIParseError, parse_page

log = logging.getLogger(__name__)

USER_AGENT = "arxiv-forge/0.1 (OAI-PMH harvester; honours Retry-After)"
STATE_FILE = "state.json"
PAGES_DIR = "pages"
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TRANSIENT_HTTP = {500, 502, 503, 504, 429}
MAX_TOKEN_RESTARTS = 3


@dataclass
class HarvestSummary:
    out_dir: Path  # pages/ (the raw responses) and state.json
    pages: int  # pages saved in total (this run and earlier runs)
    pages_this_run: int
    records: int  # records on the pages fetched by this run (deleted included)
    requests: int  # HTTP requests made by this run, retries included
    retries: int
    restarts: int  # list restarts after an expired resumption token
    resumed: bool  # continued an earlier, interrupted harvest
    slept: float  # seconds spent waiting (spacing, Retry-After, backoff)


class Throttle:
    """At most one request per `min_interval` seconds (monotonic clock), plus explicit waits."""

    def __init__(self, min_interval: float, sleep: Callable[[float], None] = time.sleep):
        self.min_interval = min_interval
        self._sleep = sleep
        self._last: float | None = None
        self.slept = 0.0

    def wait_turn(self) -> None:
        if self._last is not None:
            delay = self._last + self.min_interval - time.monotonic()
            if delay > 0:
                log.debug("spacing requests: sleeping %.2f s", delay)
                self.pause(delay)
        self._last = time.monotonic()

    def pause(self, seconds: float) -> None:
        self.slept += seconds
        self._sleep(seconds)


def retry_after_seconds(value: str | None, default: float | None) -> float | None:
    """Retry-After as seconds (a number, or an HTTP date relative to now); `default` when absent/bad."""
    if not value:
        return default
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())



class _Fetcher:
    """GET with spacing, Retry-After and backoff; returns a parsed page and its raw bytes."""

    def __init__(self, throttle: Throttle, *, max_retries: int, backoff: float, max_wait: float,
                 timeout: float, opener: urllib.request.OpenerDirector | None):
        self.throttle = throttle
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.timeout = timeout
        self.opener = opener or urllib.request.build_opener()
        self.requests = 0
        self.retries = 0

    def get(self, url: str) -> tuple[OAIPage, bytes]:
        attempt = 0
        while True:
            self.throttle.wait_turn()
            self.requests += 1
            wait, reason = None, ""
            try:
                req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
                with self.opener.open(req, timeout=self.timeout) as resp:
                    body = resp.read()
                return parse_page(body), body
            except urllib.error.HTTPError as exc:
                if exc.code not in _TRANSIENT_HTTP:
                    raise UserError(f"OAI-PMH endpoint answered HTTP {exc.code} for {url}; "
                                    "check --endpoint") from None
                reason = f"HTTP {exc.code}"
                if exc.code in (503, 429):
                    wait = retry_after_seconds(exc.headers.get("Retry-After"), None)
                    if wait is not None:
                        reason += f", Retry-After {exc.headers.get('Retry-After')}"
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            except OAIParseError as exc:  # a page cut short in transit
                reason = f"unreadable response ({exc})"
            attempt += 1
            if attempt > self.max_retries:
                raise UserError(f"OAI-PMH request failed {attempt} times ({reason}): {url}; "
                                "the harvest state is saved, rerun the same command to continue")
            self.retries += 1
            if wait is None:
                wait = self.backoff * 2 ** (attempt - 1)
            wait = min(wait, self.max_wait)
            log.warning("%s; retry %d/%d in %.1f s", reason, attempt, self.max_retries, wait)
            self.throttle.pause(wait)


def _report(progress: ProgressLog, page: OAIPage, number: int, records_this_run: int) -> None:
    """One line a page: records so far (of the list size, with ETA, when the server says it), rate this run."""
    if page.complete_list_size and page.cursor is not None:
        progress.total, done = page.complete_list_size, page.cursor + len(page.records)
    else:
        progress.total, done = None, records_this_run
    if progress.start is None:  # records of earlier runs do not count in this run's rate
        progress.start = done - len(page.records)
    progress.update(done, page=number, page_records=len(page.records))


def _check_date(name: str, value: str | None) -> None:
    if value is not None and not _DATE_RE.match(value):
        raise UserError(f"{name} must be a date YYYY-MM-DD (arXiv's granularity is days), got {value!r}")


def _first_url(endpoint: str, params: dict) -> str:
    query = {"verb": "ListRecords", "metadataPrefix": params["metadata_prefix"]}
    if params["from"]:
        query["from"] = params["from"]
    if params["until"]:
        query["until"] = params["until"]
    if params["set"]:
        query["set"] = params["set"]
    return endpoint + "?" + urllib.parse.urlencode(query)


def _token_url(endpoint: str, token: str) -> str:
    # Only verb and token: repeating metadataPrefix is a badArgument.
    return endpoint + "?" + urllib.parse.urlencode({"verb": "ListRecords", "resumptionToken": token})


def _load_state(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"harvest state {path} is unreadable ({exc}); delete it to start over") from None


def _save_state(path: Path, state: dict) -> None:
    atomic_write(path, json.dumps(state, indent=1, sort_keys=True))


def harvest(
    endpoint: str | None,
    out_dir: str | Path,
    *,
    from_date: str | None,
    until_date: str | None,
    set_spec: str | None = None,
    metadata_prefix: str = "arXiv",
    min_interval: float = 3.0,
    max_retries: int = 8,
    backoff: float = 5.0,
    max_wait: float = 3600.0,
    timeout: float = 120.0,
    opener: urllib.request.OpenerDirector | None = None,
    on_page: Callable[[int, OAIPage], None] | None = None,
) -> HarvestSummary:
    """Harvest ListRecords into out_dir (pages/, state.json); resumes an interrupted run.

    `on_page(page_number, page)` is called after each page is saved (progress hooks, tests)."""
    endpoint = endpoint or DEFAULT_ENDPOINT
    _check_date("--from", from_date)
    _check_date("--until", until_date)
    if not endpoint.startswith(("http://", "https://")):
        raise UserError(f"OAI-PMH endpoint must be an http(s) URL, got {endpoint!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE_FILE
    params = {"endpoint": endpoint, "from": from_date, "until": until_date, "set": set_spec,
              "metadata_prefix": metadata_prefix}

    state = _load_state(state_path)
    resumed = False
    if state is not None:
        if state.get("params") != params:
            raise UserError(f"{out} holds a harvest with other parameters ({state.get('params')}); "
                            "use another --out directory or delete that one")
        resumed = not state.get("complete") and state.get("pages_done", 0) > 0
    else:
        state = {"params": params, "next_token": None, "pages_done": 0, "complete": False, "restarts": 0}

    throttle = Throttle(min_interval)
    fetcher = _Fetcher(throttle, max_retries=max_retries, backoff=backoff, max_wait=max_wait,
                       timeout=timeout, opener=opener)
    pages_this_run = records_this_run = restarts = 0
    progress = ProgressLog(f"harvest {out}", unit="records", interval=0, start=None, emit=log.info)
    if resumed:
        log.info("resuming harvest in %s after page %d", out, state["pages_done"])

    while not state["complete"]:
        token = state["next_token"]
        url = _token_url(endpoint, token) if token else _first_url(endpoint, params)
        try:
            page, raw = fetcher.get(url)
        except OAIError as exc:
            if exc.code == "badResumptionToken" and token:
                restarts += 1
                if restarts > MAX_TOKEN_RESTARTS:
                    raise UserError(f"resumption token rejected {restarts} times in this run ({exc}); "
                                    "try again later") from None
                log.warning("resumption token expired (%s); requesting the list again from the start", exc)
                state["next_token"] = None
                state["restarts"] = state.get("restarts", 0) + 1
                _save_state(state_path, state)
                continue
            raise UserError(f"OAI-PMH error from {endpoint}: {exc}") from None
        if token and page.resumption_token == token:  # a server bug would otherwise loop forever
            raise UserError(f"{endpoint} returned the resumption token it was given ({token!r}); stopping")
        number = state["pages_done"] + 1
        atomic_write(out / PAGES_DIR / f"{number:05d}.xml", raw)
        state["pages_done"] = number
        state["next_token"] = page.resumption_token
        state["complete"] = page.resumption_token is None
        _save_state(state_path, state)
        pages_this_run += 1
        records_this_run += len(page.records)
        _report(progress, page, number, records_this_run)
        if on_page is not None:
            on_page(number, page)

    log.info("harvest done: %d pages in %s; %d requests, %d retries, %.1f s waiting",
             state["pages_done"], out / PAGES_DIR, fetcher.requests, fetcher.retries, throttle.slept)
    return HarvestSummary(
        out_dir=out, pages=state["pages_done"], pages_this_run=pages_this_run,
        records=records_this_run, requests=fetcher.requests,
        retries=fetcher.retries, restarts=state.get("restarts", 0), resumed=resumed,
        slept=throttle.slept,
    )


def page_files(out_dir: str | Path) -> list[Path]:
    """The saved pages of a harvest, in order (the records a caller stores in the metadata table)."""
    return sorted((Path(out_dir) / PAGES_DIR).glob("*.xml"))


def summary_json(summary: HarvestSummary) -> dict:
    data = asdict(summary)
    data["out_dir"] = str(summary.out_dir)
    return data
