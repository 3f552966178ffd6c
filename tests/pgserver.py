"""A throwaway PostgreSQL server for tests: Debian's `postgresql` binaries, a temporary cluster on 127.0.0.1.

    with PgServer.start() as pg:          # raises PgUnavailable when the binaries are not installed
        pg.create_database("dagster")
        url = pg.url("dagster")           # postgresql://dagster:...@127.0.0.1:PORT/dagster

PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user the Debian package
creates (or `nobody`); its data directory lives directly under the system temp dir, because pytest's
per-user temp root is mode 0700 and another user could not reach it.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SUPERUSER = "dagster"
START_TIMEOUT_S = 30
# Durability is pointless for a test cluster; these make initdb and every commit much cheaper.
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=50")


class PgUnavailable(RuntimeError):
    """PostgreSQL cannot be started here (binaries missing); the message says what to install."""


def find_bin_dir() -> Path:
    """Directory with initdb/pg_ctl: $PG_BIN, the newest /usr/lib/postgresql/*/bin, or initdb on PATH."""
    candidates = [os.environ.get("PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    on_path = shutil.which("initdb")
    candidates.append(str(Path(on_path).parent) if on_path else "")
    for c in candidates:
        if c and (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    raise PgUnavailable("PostgreSQL server binaries not found (initdb, pg_ctl): apt-get install -y postgresql")


def _version_key(path: str) -> tuple[int, ...]:
    name = Path(path).parent.name
    return tuple(int(p) for p in name.split(".") if p.isdigit())


def _run_as() -> str | None:
    """The user to run PostgreSQL as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PgUnavailable("running as root and neither a `postgres` nor a `nobody` user exists to run PostgreSQL")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    bin_dir: Path
    base: Path  # holds data/, the socket, the log and the password file
    port: int
    password: str
    user: str | None
    databases: list[str] = field(default_factory=list)

    # --- lifecycle ---------------------------------------------------------------------------------
    @classmethod
    def start(cls) -> PgServer:
        bin_dir = find_bin_dir()
        user = _run_as()
        base = Path(tempfile.mkdtemp(prefix="arxiv-forge-pg-"))
        server = cls(bin_dir, base, 0, secrets.token_hex(12), user)
        try:
            server._initdb()
            server._start_on_free_port()
        except BaseException:
            server.stop()
            raise
        return server

    def _as_user(self) -> dict:
        return {"user": self.user, "group": pwd.getpwnam(self.user).pw_gid, "extra_groups": []} if self.user else {}

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(self.bin_dir / args[0]), *args[1:]], capture_output=True, text=True,
                              cwd=self.base, **self._as_user())
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr.strip()}\n"
                               f"{self.log_tail()}")
        return proc

    def _initdb(self) -> None:
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.user:
            entry = pwd.getpwnam(self.user)
            for p in (self.base, pwfile):
                os.chown(p, entry.pw_uid, entry.pw_gid)
        # TCP connections (what Dagster uses) need the password; the local socket is trusted.
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, f"--pwfile={pwfile}", "--auth-host=scram-sha-256",
                  "--auth-local=trust", "--no-sync", "-E", "UTF8", "--locale=C")

    def _start_on_free_port(self) -> None:
        # Another process can take the port between free_port() and the bind: try a few.
        for attempt in range(3):
            self.port = free_port()
            opts = f"-k {self.base} -h 127.0.0.1 -p {self.port} " + " ".join(f"-c {s}" for s in FAST_SETTINGS)
            proc = subprocess.run(
                [str(self.bin_dir / "pg_ctl"), "start", "-D", str(self.data), "-l", str(self.log), "-w",
                 "-t", str(START_TIMEOUT_S), "-o", opts],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                cwd=self.base, **self._as_user(),
            )
            if proc.returncode == 0:
                return
            if "could not bind" not in self.log_tail() or attempt == 2:
                raise RuntimeError(f"pg_ctl start failed ({proc.returncode}): {proc.stderr.strip()}\n"
                                   f"{self.log_tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server (immediate: the data is thrown away) and delete the cluster. Safe to call twice."""
        if (self.data / "postmaster.pid").exists():
            subprocess.run([str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate", "-w"],
                           capture_output=True, cwd=self.base, **self._as_user())
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- use -------------------------------------------------------------------------------------------
    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def username(self) -> str:
        return SUPERUSER

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def url(self, db: str = "postgres") -> str:
        # The driver is explicit: SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3 (not installed).
        return f"postgresql+psycopg2://{SUPERUSER}:{self.password}@{self.host}:{self.port}/{db}"

    def connect(self, db: str = "postgres"):
        import psycopg2  # installed with dagster-postgres

        return psycopg2.connect(host=self.host, port=self.port, user=SUPERUSER, password=self.password, dbname=db)

    def create_database(self, name: str) -> str:
        conn = self.connect()
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        self.databases.append(name)
        return name

    def query(self, db: str, sql: str, params: tuple = ()) -> list[tuple]:
        conn = self.connect(db)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def pg():
    """A PostgreSQL server for the module (`pytest_plugins = ["pgserver"]`); skips with the reason when the
    Debian package is missing."""
    try:
        server = PgServer.start()
    except PgUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()
