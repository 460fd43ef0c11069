"""The embedded PostgreSQL/PostGIS server: a private cluster that gisgrid starts itself.

Layout (``home`` is ``$GISGRID_HOME``, default ``~/.local/share/gisgrid``)::

    home/pgdata        the cluster (initdb: UTF8, C locale); a symlink when it lives elsewhere
    home/run/          the unix socket directory (mode 0700)
    home/log/server.log
    home/server.json   port, socket dir and loopback password (mode 0600)
    home/server.lock   serialises concurrent start/stop calls

The server listens on a unix socket in a private directory and on 127.0.0.1 only, on a free
port chosen at the first start and remembered in ``server.json`` (a new one is picked if it is
taken later). Authentication: ``trust`` for the socket (only the owner of the 0700 socket
directory, and root, can reach it) and ``scram-sha-256`` with a generated password for loopback
TCP, both only for the role ``gisgrid``. The database ``gisgrid`` is created with the
``postgis`` extension.

Running as root
---------------
PostgreSQL refuses to run as root, so a root caller runs the server as an unprivileged OS user:
``postgres`` (Debian's account) when it exists, else a ``gisgrid`` system user created with
``useradd --system``. Every server command (initdb, pg_ctl) is executed as that user through
``subprocess`` ``user=``/``group=``; the cluster and its run and log directories are owned by it.

That user usually cannot reach ``home``: ``/root`` and pytest's ``/tmp/pytest-of-root`` are
mode 0700. Rather than loosening permissions on someone's home (``chmod o+x /root``) or relying
on ACL tools that may be absent, the cluster then lives in a root-managed place the service user
can reach, ``/var/lib/gisgrid/clusters/<key>/{pgdata,run,log}`` (``<key>`` is a hash of the
resolved ``home`` path; a ``home/pgdata`` symlink points at it and the directory holds a
``home`` file naming its owner). When every directory above ``home`` is traversable by the
service user (e.g. ``/srv/gisgrid`` mode 0755), the cluster stays in ``home`` itself. Root
clients reach the socket whatever its directory's mode, so nothing is opened to other users.

A normal user runs the server as themselves, entirely inside ``home`` (the socket directory
moves to ``/tmp/gisgrid-<uid>-<key>`` only when ``home`` is too deep for a unix socket path).

Nothing here runs at import time.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from gisgrid.errors import DatabaseUnavailable

DATABASE = "gisgrid"
ROLE = "gisgrid"
SYSTEM_CLUSTERS = Path("/var/lib/gisgrid/clusters")
FALLBACK_SERVICE_USER = "gisgrid"
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; leave room for "/.s.PGSQL.NNNNN"
_LOG_TAIL_LINES = 30

NO_POSTGRES_HELP = (
    "gisgrid's embedded store needs the PostgreSQL server (initdb, pg_ctl, postgres) and the "
    "PostGIS extension installed on this machine. Install them (Debian/Ubuntu: "
    "'apt-get install postgresql postgresql-15-postgis-3', or the postgis package matching "
    "your PostgreSQL), or set GISGRID_DATABASE_URL to an existing PostGIS server, e.g. "
    "GISGRID_DATABASE_URL=postgresql+psycopg://user:password@localhost:5432/gisgrid (a "
    "server from the postgis/postgis container image works: "
    "'docker run -d -p 5432:5432 -e POSTGRES_PASSWORD=secret postgis/postgis'). "
    "GISGRID_PG_BINDIR may name the directory holding initdb and pg_ctl."
)


@dataclass(frozen=True)
class ServerStatus:
    """What ``gisgrid db status`` reports about the embedded cluster."""

    running: bool
    pid: int | None
    socket_dir: Path | None
    port: int | None
    data_dir: Path
    os_user: str | None = None
    log_file: Path | None = None


@dataclass(frozen=True)
class _Account:
    """The OS account the server processes run as."""

    name: str
    uid: int
    gid: int

    @property
    def is_self(self) -> bool:
        return self.uid == os.geteuid()


def find_bindir() -> Path:
    """Return the directory holding PostgreSQL's ``initdb``, ``pg_ctl`` and ``postgres``.

    Looked up in ``$GISGRID_PG_BINDIR``, ``pg_config --bindir``, ``/usr/lib/postgresql/*/bin``
    (newest first), ``/usr/pgsql-*/bin`` and ``PATH``; raises :class:`DatabaseUnavailable` with
    installation advice when none has them.
    """
    candidates: list[Path] = []
    if os.environ.get("GISGRID_PG_BINDIR"):
        candidates.append(Path(os.environ["GISGRID_PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 timeout=10, check=True).stdout.strip()
            candidates.append(Path(out))
    versioned = glob.glob("/usr/lib/postgresql/*/bin") + glob.glob("/usr/pgsql-*/bin")
    candidates += sorted((Path(p) for p in versioned), key=_version_key, reverse=True)
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).parent)
    for bindir in candidates:
        if all((bindir / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise DatabaseUnavailable("PostgreSQL server binaries not found", [NO_POSTGRES_HELP])


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", str(path))) or (0,)


def check_postgis(bindir: Path) -> None:
    """Raise :class:`DatabaseUnavailable` when PostGIS is not installed for ``bindir``'s server."""
    sharedirs: list[Path] = []
    if (bindir / "pg_config").is_file():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([str(bindir / "pg_config"), "--sharedir"], capture_output=True,
                                 text=True, timeout=10, check=True).stdout.strip()
            sharedirs.append(Path(out))
    version = subprocess.run([str(bindir / "postgres"), "-V"], capture_output=True,
                             text=True, timeout=10).stdout
    major = re.search(r"(\d+)", version)
    if major:
        sharedirs.append(Path(f"/usr/share/postgresql/{major.group(1)}"))
        sharedirs.append(Path(f"/usr/pgsql-{major.group(1)}/share"))
    if not any((d / "extension" / "postgis.control").is_file() for d in sharedirs):
        raise DatabaseUnavailable(
            f"the PostGIS extension is not installed for the PostgreSQL server in {bindir} "
            f"({version.strip() or 'unknown version'})", [NO_POSTGRES_HELP])


class EmbeddedServer:
    """A private PostgreSQL cluster with PostGIS under ``home`` (see the module docstring).

    Parameters
    ----------
    home
        gisgrid's data directory (``Settings.home``).
    fast
        Trade durability for speed (``fsync=off``, ``synchronous_commit=off``,
        ``full_page_writes=off``): for throwaway test clusters only.
    """

    def __init__(self, home: Path, *, fast: bool = False):
        self.home = Path(home).expanduser().absolute()
        self.fast = fast

    # ------------------------------------------------------------------ paths and state
    @property
    def data_dir(self) -> Path:
        """The cluster directory (``home/pgdata``, resolved when it is a symlink)."""
        link = self.home / "pgdata"
        return link.resolve() if link.is_symlink() else link

    @property
    def state_file(self) -> Path:
        return self.home / "server.json"

    def _runtime_root(self) -> Path:
        """Where ``run/`` and ``log/`` live: next to the cluster when it is outside ``home``."""
        data = self.data_dir
        return data.parent if data.parent != self.home else self.home

    @property
    def log_file(self) -> Path:
        return self._runtime_root() / "log" / "server.log"

    def _read_state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _write_state(self, state: dict) -> None:
        tmp = self.state_file.with_suffix(".json.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(state, fh, indent=2)
        os.replace(tmp, self.state_file)

    @contextlib.contextmanager
    def _lock(self):
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "server.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # ------------------------------------------------------------------ public API
    def status(self) -> ServerStatus:
        """Report whether the cluster runs, read from its ``postmaster.pid``."""
        data = self.data_dir
        state = self._read_state()
        owner = _owner_name(data)
        pid_lines = _read_lines(data / "postmaster.pid")
        pid = int(pid_lines[0]) if pid_lines and pid_lines[0].strip().isdigit() else None
        running = pid is not None and _is_postgres(pid)
        if running and len(pid_lines) >= 5:
            port = int(pid_lines[3])
            socket_dir = Path(pid_lines[4]) if pid_lines[4].strip() else None
        else:
            port = state.get("port")
            socket_dir = Path(state["socket_dir"]) if state.get("socket_dir") else None
        return ServerStatus(running=running, pid=pid if running else None,
                            socket_dir=socket_dir, port=port, data_dir=data, os_user=owner,
                            log_file=self.log_file)

    def start(self) -> ServerStatus:
        """Start the cluster (initialising it the first time) and return its status.

        Idempotent: on a running cluster it only makes sure the database and PostGIS exist.
        Raises :class:`DatabaseUnavailable` with the server log tail when anything fails.
        """
        with self._lock():
            current = self.status()
            if not current.running:
                bindir = find_bindir()
                check_postgis(bindir)
                account = self._account()
                data = self._prepare_dirs(account)
                if not (data / "PG_VERSION").is_file():
                    self._initdb(bindir, account, data)
                self._start_postmaster(bindir, account, data)
                current = self.status()
            self._ensure_database()
            return current

    def stop(self) -> ServerStatus:
        """Stop the cluster (fast shutdown); a stopped cluster is left as it is."""
        with self._lock():
            current = self.status()
            if not current.running:
                return current
            account = self._account_of(self.data_dir)
            result = self._run([str(find_bindir() / "pg_ctl"), "stop", "-D", str(self.data_dir),
                                "-m", "fast", "-w", "-t", "60", "-s"], account)
            if result.returncode != 0:
                raise self._failure("could not stop the embedded PostgreSQL server", result)
            return self.status()

    def url(self, *, loopback: bool = False) -> str:
        """SQLAlchemy URL (``postgresql+psycopg``) of the ``gisgrid`` database.

        Over the unix socket by default; ``loopback=True`` gives the 127.0.0.1 TCP URL with
        the generated password. Raises :class:`DatabaseUnavailable` before the first start.
        """
        state = self._read_state()
        if not state.get("port"):
            raise DatabaseUnavailable(
                f"the embedded PostgreSQL cluster in {self.home} has not been started yet: "
                "run 'gisgrid db start'")
        if loopback:
            url = URL.create("postgresql+psycopg", username=ROLE, password=state["password"],
                             host="127.0.0.1", port=state["port"], database=DATABASE)
        else:
            url = URL.create("postgresql+psycopg", username=ROLE, database=DATABASE,
                             query={"host": state["socket_dir"], "port": str(state["port"])})
        return url.render_as_string(hide_password=False)

    def destroy(self) -> None:
        """Stop the cluster and delete it with its run/log directories and state (tests)."""
        self.stop()
        data = self.data_dir
        root = self._runtime_root()
        if root != self.home and root.parent == SYSTEM_CLUSTERS:
            shutil.rmtree(root, ignore_errors=True)
        else:
            for path in (data, self.home / "run", self.home / "log"):
                shutil.rmtree(path, ignore_errors=True)
        state = self._read_state()
        if state.get("socket_dir", "").startswith("/tmp/gisgrid-"):
            shutil.rmtree(state["socket_dir"], ignore_errors=True)
        for path in (self.home / "pgdata", self.state_file):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    # ------------------------------------------------------------------ internals
    def _account(self) -> _Account:
        """The account to run the server as (the cluster's owner once it exists)."""
        if (self.data_dir / "PG_VERSION").is_file():
            return self._account_of(self.data_dir)
        if os.geteuid() != 0:
            return _Account(pwd.getpwuid(os.geteuid()).pw_name, os.geteuid(), os.getegid())
        return _service_account()

    def _account_of(self, data: Path) -> _Account:
        st = data.stat()
        if os.geteuid() != 0 and st.st_uid != os.geteuid():
            raise DatabaseUnavailable(
                f"the embedded cluster {data} belongs to OS user {_owner_name(data)}: run gisgrid "
                "as that user (or as root), or use another GISGRID_HOME")
        if st.st_uid == 0:
            raise DatabaseUnavailable(f"the embedded cluster {data} is owned by root; "
                                      "PostgreSQL cannot run as root: delete it and start again")
        return _Account(pwd.getpwuid(st.st_uid).pw_name, st.st_uid, st.st_gid)

    def _prepare_dirs(self, account: _Account) -> Path:
        """Create the cluster, run and log directories owned by ``account``; return the cluster."""
        self.home.mkdir(parents=True, exist_ok=True)
        link = self.home / "pgdata"
        if not link.exists() and not link.is_symlink():
            if not account.is_self and not _traversable(self.home, account):
                key = hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:16]
                root = SYSTEM_CLUSTERS / key
                SYSTEM_CLUSTERS.mkdir(parents=True, exist_ok=True)
                for parent in (SYSTEM_CLUSTERS, SYSTEM_CLUSTERS.parent):
                    parent.chmod(0o755)
                root.mkdir(mode=0o700, exist_ok=True)
                (root / "home").write_text(f"{self.home}\n")
                os.chown(root, account.uid, account.gid)
                (root / "pgdata").mkdir(mode=0o700, exist_ok=True)
                link.symlink_to(root / "pgdata")
            else:
                link.mkdir(mode=0o700)
        data = self.data_dir
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
        runtime = self._runtime_root()
        for path in (data, runtime / "log", self._socket_dir()):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = path.stat()
            if st.st_uid != account.uid:
                if not account.is_self and os.geteuid() == 0:
                    os.chown(path, account.uid, account.gid)
                else:
                    raise DatabaseUnavailable(
                        f"{path} belongs to another OS user ({_owner_name(path)}); "
                        "remove it or use another GISGRID_HOME")
            path.chmod(0o700)
        return data

    def _socket_dir(self) -> Path:
        candidate = self._runtime_root() / "run"
        if len(str(candidate)) <= _SOCKET_PATH_MAX - 16:
            return candidate
        key = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        return Path(f"/tmp/gisgrid-{os.geteuid()}-{key}")

    def _initdb(self, bindir: Path, account: _Account, data: Path) -> None:
        result = self._run([str(bindir / "initdb"), "-D", str(data), "-U", ROLE, "-E", "UTF8",
                            "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256",
                            "--no-instructions"], account)
        if result.returncode != 0:
            raise DatabaseUnavailable(
                f"initdb failed for the embedded cluster in {data}",
                _tail(result.stdout + result.stderr))
        hba = data / "pg_hba.conf"
        hba.write_text(
            "# written by gisgrid: only the gisgrid role; socket dir is private (0700)\n"
            f"local   all   {ROLE}   trust\n"
            f"host    all   {ROLE}   127.0.0.1/32   scram-sha-256\n")
        with open(data / "postgresql.conf", "a") as fh:
            fh.write("\ninclude_if_exists = 'gisgrid.conf'\n")
        _chown(hba, account)

    def _write_conf(self, account: _Account, data: Path, port: int) -> None:
        lines = [
            "# written by gisgrid at every start; edit postgresql.conf for your own settings",
            "listen_addresses = '127.0.0.1'",
            f"port = {port}",
            f"unix_socket_directories = '{self._socket_dir()}'",
            "unix_socket_permissions = 0700",
            "max_connections = 60",
        ]
        if self.fast:
            lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off",
                      "shared_buffers = 32MB"]
        conf = data / "gisgrid.conf"
        conf.write_text("\n".join(lines) + "\n")
        _chown(conf, account)

    def _start_postmaster(self, bindir: Path, account: _Account, data: Path) -> None:
        state = self._read_state()
        port = state.get("port")
        log = self.log_file
        for attempt in range(3):
            if not port or not _port_free(port):
                port = _free_port()
            self._write_conf(account, data, port)
            result = self._run([str(bindir / "pg_ctl"), "start", "-D", str(data), "-l",
                                str(log), "-w", "-t", "60", "-s"], account)
            if result.returncode == 0:
                break
            if "could not bind" not in "\n".join(_tail(_read_text(log))) or attempt == 2:
                raise self._failure("could not start the embedded PostgreSQL server", result)
            port = None
        state.update(port=port, socket_dir=str(self._socket_dir()), data_dir=str(data),
                     os_user=account.name)
        state.setdefault("password", secrets.token_urlsafe(24))
        self._write_state(state)

    def _ensure_database(self) -> None:
        import psycopg
        from psycopg import sql

        state = self._read_state()
        kw = dict(host=state["socket_dir"], port=state["port"], user=ROLE, connect_timeout=10,
                  autocommit=True)
        try:
            with psycopg.connect(dbname="postgres", **kw) as con:
                if not con.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                   (DATABASE,)).fetchone():
                    con.execute(sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0")
                                .format(sql.Identifier(DATABASE)))
                con.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(ROLE), sql.Literal(state["password"])))
            with psycopg.connect(dbname=DATABASE, **kw) as con:
                con.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        except psycopg.Error as exc:
            raise DatabaseUnavailable(
                f"the embedded PostgreSQL server in {self.data_dir} is running but the "
                f"'{DATABASE}' database with PostGIS could not be prepared: {exc}",
                _tail(_read_text(self.log_file))) from exc

    def _run(self, argv: list[str], account: _Account) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        kwargs = {}
        if not account.is_self:
            kwargs = dict(user=account.uid, group=account.gid, extra_groups=[])
            env.update(HOME=str(self.data_dir), USER=account.name, LOGNAME=account.name)
        try:
            return subprocess.run(argv, capture_output=True, text=True, env=env, cwd="/",
                                  timeout=120, umask=0o077, **kwargs)
        except (OSError, subprocess.SubprocessError) as exc:
            raise DatabaseUnavailable(f"could not run {argv[0]} as OS user {account.name}: {exc}",
                                      _tail(_read_text(self.log_file))) from exc

    def _failure(self, message: str, result: subprocess.CompletedProcess) -> DatabaseUnavailable:
        details = _tail(result.stdout + result.stderr, 10)
        details += [f"server log {self.log_file}:"] + _tail(_read_text(self.log_file))
        return DatabaseUnavailable(f"{message} (cluster {self.data_dir})", details)


def reap_orphan_clusters() -> list[Path]:
    """Stop and delete clusters under ``/var/lib/gisgrid/clusters`` whose ``home`` is gone.

    A test session killed before its teardown leaves such a cluster running; this is safe to
    call at any time because a cluster whose home still exists is never touched.
    Returns the cluster directories removed.
    """
    removed: list[Path] = []
    if os.geteuid() != 0 or not SYSTEM_CLUSTERS.is_dir():
        return removed
    for root in SYSTEM_CLUSTERS.iterdir():
        home = Path(_read_text(root / "home").strip() or "/nonexistent-gisgrid-home")
        if home.exists():
            continue
        pid_lines = _read_lines(root / "pgdata" / "postmaster.pid")
        if pid_lines and pid_lines[0].strip().isdigit() and _is_postgres(int(pid_lines[0])):
            owner = (root / "pgdata").stat()
            subprocess.run([str(find_bindir() / "pg_ctl"), "stop", "-D", str(root / "pgdata"),
                            "-m", "immediate", "-w", "-t", "30", "-s"], capture_output=True,
                           cwd="/", user=owner.st_uid, group=owner.st_gid, extra_groups=[])
        shutil.rmtree(root, ignore_errors=True)
        removed.append(root)
    return removed


# ---------------------------------------------------------------------- module helpers
def _service_account() -> _Account:
    """``postgres`` if it exists, else the ``gisgrid`` system user (created on demand)."""
    for name in (os.environ.get("GISGRID_PG_USER"), "postgres", FALLBACK_SERVICE_USER):
        if not name:
            continue
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            if entry.pw_uid != 0:
                return _Account(name, entry.pw_uid, entry.pw_gid)
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run([useradd, "--system", "--no-create-home", "--home-dir", "/nonexistent",
                             "--shell", "/usr/sbin/nologin", FALLBACK_SERVICE_USER],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise DatabaseUnavailable(
            "running as root, gisgrid needs an unprivileged OS user for PostgreSQL and could not "
            f"create '{FALLBACK_SERVICE_USER}': {result.stderr.strip()}",
            ["create one (useradd --system gisgrid) or set GISGRID_PG_USER to an existing one"])
    entry = pwd.getpwnam(FALLBACK_SERVICE_USER)
    return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _traversable(path: Path, account: _Account) -> bool:
    """True if ``account`` may search every directory from ``/`` down to ``path``."""
    groups = set(os.getgrouplist(account.name, account.gid))
    for directory in (path, *path.parents):
        st = directory.stat()
        if st.st_uid == account.uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def _chown(path: Path, account: _Account) -> None:
    if not account.is_self:
        os.chown(path, account.uid, account.gid)


def _owner_name(path: Path) -> str | None:
    try:
        uid = path.stat().st_uid
    except OSError:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _is_postgres(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            return b"postgres" in cmdline.read_bytes()
        except OSError:
            return False
    return True


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> list[str]:
    return [line for line in text.splitlines() if line.strip()][-lines:]


__all__ = ["EmbeddedServer", "ServerStatus", "check_postgis", "find_bindir",
           "reap_orphan_clusters"]
