"""The embedded server: start/status/stop, the ``gisgrid db`` commands, root and non-root runs.

These tests start clusters of their own besides the session's one (about 2 s each).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from gisgrid.cli.db import db as db_group
from gisgrid.config import Settings
from gisgrid.db import migrate
from gisgrid.db.engine import dispose_engines, get_engine
from gisgrid.db.server import SYSTEM_CLUSTERS, EmbeddedServer
from gisgrid.errors import DatabaseUnavailable

pytestmark = pytest.mark.db

AS_ROOT = os.geteuid() == 0


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for pid {pid}")


def _postgis_version(url: str) -> str:
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with eng.connect() as c:
            return c.execute(sa.text("SELECT postgis_lib_version()")).scalar_one()
    finally:
        eng.dispose()


@pytest.fixture(scope="module")
def second_server(tmp_path_factory):
    """A second cluster, started by the first test that needs it; destroyed after the module."""
    server = EmbeddedServer(tmp_path_factory.mktemp("second") / "home", fast=True)
    yield server
    server.destroy()


@pytest.fixture
def cli_env(second_server):
    return {"GISGRID_HOME": str(second_server.home), "GISGRID_DATABASE_URL": None}


def test_start_is_idempotent_and_gives_postgis(second_server):
    first = second_server.start()
    assert first.running and first.pid and first.port
    assert first.socket_dir.is_dir()
    assert (first.data_dir / "PG_VERSION").is_file()
    again = second_server.start()
    assert (again.pid, again.port) == (first.pid, first.port)
    assert _postgis_version(second_server.url()).startswith("3.")
    assert _postgis_version(second_server.url(loopback=True)).startswith("3.")


def test_listens_on_socket_and_loopback_only(second_server):
    st = second_server.start()
    conf = (st.data_dir / "gisgrid.conf").read_text()
    assert "listen_addresses = '127.0.0.1'" in conf
    with psycopg.connect(host=str(st.socket_dir), port=st.port, user="gisgrid",
                         dbname="gisgrid") as con:
        assert con.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
    assert oct(st.socket_dir.stat().st_mode & 0o777) == oct(0o700)
    with pytest.raises(psycopg.OperationalError):  # loopback needs the password
        psycopg.connect(host="127.0.0.1", port=st.port, user="gisgrid", dbname="gisgrid",
                        password="wrong", connect_timeout=5)


def test_server_runs_as_unprivileged_user(second_server):
    st = second_server.start()
    assert _uid_of(st.pid) != 0
    assert st.data_dir.stat().st_uid == _uid_of(st.pid)
    if AS_ROOT:
        # pytest's tmp dirs are under /tmp/pytest-of-root (0700): the cluster lives outside
        assert (second_server.home / "pgdata").is_symlink()
        assert st.data_dir.parent.parent == SYSTEM_CLUSTERS
        assert st.os_user in ("postgres", "gisgrid")
    else:
        assert _uid_of(st.pid) == os.geteuid()


def test_cli_status_stop_start(second_server, cli_env):
    second_server.start()
    runner = CliRunner()
    result = runner.invoke(db_group, ["status"], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "running" in result.output and "schema revision" in result.output

    result = runner.invoke(db_group, ["url"], env=cli_env)
    assert result.exit_code == 0 and result.output.strip() == second_server.url()

    result = runner.invoke(db_group, ["stop"], env=cli_env)
    assert result.exit_code == 0 and "stopped" in result.output
    assert not second_server.status().running
    result = runner.invoke(db_group, ["status"], env=cli_env)
    assert result.exit_code == 1 and "not running" in result.output
    assert runner.invoke(db_group, ["stop"], env=cli_env).exit_code == 0  # stop when stopped

    result = runner.invoke(db_group, ["start"], env=cli_env)
    assert result.exit_code == 0, result.output
    assert f"schema at revision {migrate.head()}" in result.output
    assert second_server.status().running


def test_console_script_exit_codes(second_server):
    env = {**os.environ, "GISGRID_HOME": str(second_server.home)}
    env.pop("GISGRID_DATABASE_URL", None)
    second_server.start()
    cmd = [sys.executable, "-m", "gisgrid", "db", "status"]
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    second_server.stop()
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 1


def test_start_failure_reports_the_server_log(second_server):
    second_server.start()
    second_server.stop()
    conf = second_server.data_dir / "postgresql.conf"
    original = conf.read_text()
    conf.write_text(original + "\nno_such_setting_h1 = 1\n")
    try:
        with pytest.raises(DatabaseUnavailable) as info:
            second_server.start()
        text = str(info.value)
        assert "could not start" in text
        assert "no_such_setting_h1" in text  # the log tail names the culprit
    finally:
        conf.write_text(original)
    assert second_server.start().running


def test_database_url_is_honoured(postgis_url, tmp_path):
    home = tmp_path / "unused-home"
    runner = CliRunner()
    env = {"GISGRID_HOME": str(home), "GISGRID_DATABASE_URL": postgis_url}
    for command in ("start", "stop"):
        result = runner.invoke(db_group, [command], env=env)
        assert result.exit_code == 0, result.output
        assert "external" in result.output
    result = runner.invoke(db_group, ["status"], env=env)
    assert result.exit_code == 0 and "up to date" in result.output
    assert "storage SRID: 4490" in result.output
    assert runner.invoke(db_group, ["url"], env=env).output.strip() == postgis_url
    assert runner.invoke(db_group, ["upgrade"], env=env).exit_code == 0
    assert not (home / "pgdata").exists()  # no embedded cluster was made

    engine = get_engine(Settings(home=home, database_url=postgis_url))
    try:
        assert engine.url.render_as_string(hide_password=False) == postgis_url
        assert get_engine(Settings(home=home, database_url=postgis_url)) is engine
    finally:
        dispose_engines()


def test_unreachable_external_database_status_fails(tmp_path):
    env = {"GISGRID_HOME": str(tmp_path),
           "GISGRID_DATABASE_URL": "postgresql+psycopg://nobody:x@127.0.0.1:9/none"}
    result = CliRunner().invoke(db_group, ["status"], env=env)
    assert result.exit_code == 1 and "not reachable" in result.output


@pytest.mark.skipif(not AS_ROOT, reason="as a normal user the home is used directly by the "
                    "other tests; this checks root with a home the service user can reach")
def test_root_with_traversable_home_keeps_cluster_in_home():
    base = Path(tempfile.mkdtemp(prefix="gisgrid-h1-", dir="/tmp"))
    base.chmod(0o755)
    server = EmbeddedServer(base / "home", fast=True)
    try:
        st = server.start()
        assert st.data_dir == base / "home" / "pgdata" and not st.data_dir.is_symlink()
        assert st.data_dir.stat().st_uid == _uid_of(st.pid) != 0
        assert _postgis_version(server.url()).startswith("3.")
    finally:
        server.destroy()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(not AS_ROOT, reason="switching to another OS user needs root; as a normal "
                    "user every other test here already runs the non-root path")
def test_normal_user_runs_server_as_itself():
    """Fork, drop to ``nobody`` and run the non-root path: the server runs as that user."""
    nobody = pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(prefix="gisgrid-h1-nobody-", dir="/tmp"))
    os.chown(base, nobody.pw_uid, nobody.pw_gid)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            server = EmbeddedServer(base / "home", fast=True)
            st = server.start()
            version = _postgis_version(server.url())
            server.stop()
            message = f"{st.os_user}|{_uid_of(st.pid)}|{st.data_dir}|{version}"
            code = 0
        except BaseException as exc:  # report anything to the parent
            message = f"error|{exc!r}"
        os.write(write_end, message.encode())
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as fh:
        message = fh.read()
    _, status = os.waitpid(pid, 0)
    try:
        assert os.waitstatus_to_exitcode(status) == 0, message
        user, uid, data_dir, version = message.split("|")
        assert (user, int(uid)) == ("nobody", nobody.pw_uid)
        assert data_dir == str(base / "home" / "pgdata")
        assert version.startswith("3.")
    finally:
        leftover = EmbeddedServer(base / "home")
        if leftover.status().running:
            leftover.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_get_engine_starts_the_embedded_server_on_demand(second_server):
    second_server.start()
    second_server.stop()
    settings = Settings(home=second_server.home, database_url=None)
    try:
        engine = get_engine(settings)
        assert second_server.status().running
        with engine.connect() as c:
            assert c.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1
        assert get_engine(settings) is engine
    finally:
        dispose_engines()


def test_missing_postgis_is_explained(tmp_path):
    from gisgrid.db.server import check_postgis

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "postgres").write_text("#!/bin/sh\necho 'postgres (PostgreSQL) 99.1'\n")
    (fake / "postgres").chmod(0o755)
    with pytest.raises(DatabaseUnavailable) as info:
        check_postgis(fake)
    text = str(info.value)
    assert "PostGIS extension is not installed" in text
    assert "GISGRID_DATABASE_URL" in text and "postgis/postgis" in text
