"""An offline bundle: everything a machine needs to set this project up with no network.

`make bundle` (online, once, by a facilitator) writes a folder with

- `wheels/`: a wheel for every locked dependency of every group, built for this Python and
  platform (source-only packages such as llama-cpp-python are built once here), plus uv and
  the project's build backend;
- `requirements.txt`: the locked versions (`uv export`);
- `models/`: the GGUF files in the models folder;
- `images/images.tar`: the Compose stack's images, when a container engine is at hand;
- `manifest.json`: the size and sha256 of every file, the Python version and platform.

`make bundle-install BUNDLE=...` (offline, on every laptop) checks every checksum, installs uv
from the bundle, creates `.venv` with pip's index switched off (`--no-index`), copies the models
into place and loads the images. This module uses the standard library only, so it runs with a
plain `python3` before any environment exists: `python3 src/<package>/bundle.py install DIR`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    # Runs one titled command and returns its output (`Runner` does, tests record instead).
    RunCommand = Callable[[str, Sequence[str]], str]

MANIFEST = "manifest.json"
FORMAT = 1
# The uv the bundle carries (the version the template is tested with).
UV_REQUIREMENT = "uv==0.13.8"
# pip builds the wheels; uv has no command that downloads or builds wheels for other machines.
PIP_REQUIREMENT = "pip==26.3"
CHUNK = 1 << 20


class BundleError(Exception):
    """A bundle cannot be written or installed; the message says what to do."""


@dataclass(frozen=True)
class Entry:
    """One file of the bundle."""

    path: str
    sha256: str
    size: int


def sha256_of(path: Path) -> str:
    """The file's sha256, read in chunks (models are hundreds of megabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def platform_tag() -> str:
    """Where wheels built here run: e.g. linux-x86_64, macosx-14.0-arm64."""
    return sysconfig.get_platform()


def python_version(project: Path) -> str:
    """The project's Python (`.python-version`), e.g. 3.12."""
    pinned = project / ".python-version"
    if pinned.is_file():
        return pinned.read_text(encoding="utf-8").strip()
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def build_backend_requirement(project: Path) -> str:
    """The build backend of the project itself, for its editable install."""
    data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    requires: list[str] = data.get("build-system", {}).get("requires", [])
    if len(requires) != 1:
        raise BundleError("pyproject.toml: expected one build-system requirement (uv_build)")
    return requires[0]


def build_variables(project: Path) -> dict[str, dict[str, str]]:
    """`[tool.uv.extra-build-variables]`: how uv builds source-only packages for this project.

    The bundle builds them the same way (llama-cpp-python portable: a wheel that runs on every
    laptop of the room, not only on the facilitator's CPU).
    """
    data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    variables: dict[str, dict[str, str]] = (
        data.get("tool", {}).get("uv", {}).get("extra-build-variables", {})
    )
    return variables


def locked_pin(requirements: Path, package: str) -> str | None:
    """`package==version` as `uv export` wrote it, or None when the lock does not have it."""
    for line in requirements.read_text(encoding="utf-8").splitlines():
        name, _, version = line.split(";", 1)[0].strip().partition("==")
        if name.lower().replace("_", "-") == package and version:
            return f"{package}=={version.strip()}"
    return None


def entries_for(root: Path, files: Iterable[Path]) -> list[Entry]:
    """Manifest entries for files under `root`, sorted by path."""
    return sorted(
        (
            Entry(path.relative_to(root).as_posix(), sha256_of(path), path.stat().st_size)
            for path in files
        ),
        key=lambda entry: entry.path,
    )


def write_manifest(bundle: Path, *, python: str, images: list[str], note: str) -> dict[str, object]:
    """Checksums of everything in the bundle, and what it was built for."""
    files = [p for p in bundle.rglob("*") if p.is_file() and p.name != MANIFEST]
    manifest: dict[str, object] = {
        "format": FORMAT,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": python,
        "platform": platform_tag(),
        "images": images,
        "images_note": note,
        "files": [entry.__dict__ for entry in entries_for(bundle, files)],
    }
    (bundle / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def read_manifest(bundle: Path) -> dict[str, object]:
    """The manifest, or a clear error when the folder is not a bundle."""
    path = bundle / MANIFEST
    if not path.is_file():
        raise BundleError(f"{bundle} is not a bundle: {MANIFEST} is missing (run `make bundle`)")
    try:
        manifest: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path} is not valid JSON ({exc}): copy the bundle again") from exc
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT}")
    return manifest


def verify(bundle: Path, manifest: dict[str, object]) -> list[str]:
    """Problems with the bundle's files: missing, truncated or changed. Empty when intact."""
    problems = []
    raw_files = manifest.get("files")
    for raw in raw_files if isinstance(raw_files, list) else []:
        entry = Entry(**raw)
        path = bundle / entry.path
        if not path.is_file():
            problems.append(f"{entry.path}: missing")
        elif path.stat().st_size != entry.size:
            problems.append(f"{entry.path}: {path.stat().st_size} bytes, expected {entry.size}")
        elif sha256_of(path) != entry.sha256:
            problems.append(f"{entry.path}: sha256 differs from the manifest")
    return problems


def check_platform(manifest: dict[str, object], python: str, here: str) -> None:
    """Wheels only install on the Python and platform they were built for."""
    wanted = (manifest.get("python"), manifest.get("platform"))
    if wanted != (python, here):
        raise BundleError(
            f"this bundle is for Python {wanted[0]} on {wanted[1]}; this machine has Python "
            f"{python} on {here}. Build a bundle on a machine like this one (`make bundle`)."
        )


class Runner:
    """Runs commands with progress lines; a failure stops with the command's own output."""

    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.cwd = cwd
        self.env = env

    def __call__(self, title: str, args: Sequence[str]) -> str:
        sys.stdout.write(f"==> {title}\n")
        sys.stdout.flush()
        result = subprocess.run(  # noqa: S603 - fixed tools, arguments from this module
            list(args), cwd=self.cwd, env=self.env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()[-4000:]
            raise BundleError(f"{title} failed ({' '.join(args)}):\n{output}")
        return result.stdout


def find_tool(name: str) -> str:
    """A tool on PATH, or a clear error."""
    found = shutil.which(name)
    if found is None:
        raise BundleError(f"`{name}` is not on PATH: install it and run again")
    return found


def container_engine() -> str | None:
    """docker or podman, whichever is installed."""
    return shutil.which("docker") or shutil.which("podman")


def succeeds(args: Sequence[str]) -> bool:
    """Whether a command exits 0 (its output is not needed)."""
    try:
        result = subprocess.run(  # noqa: S603 - fixed tools, arguments from this module
            list(args), capture_output=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


COMPOSE_COMMANDS = (("docker", "compose"), ("docker-compose",), ("podman", "compose"))


def compose_command() -> list[str] | None:
    """The first Docker Compose that works here: the plugin, the standalone binary, podman's."""
    for command in COMPOSE_COMMANDS:
        found = shutil.which(command[0])
        if found and succeeds([found, *command[1:], "version"]):
            return [found, *command[1:]]
    return None


def save_images(project: Path, bundle: Path, run: RunCommand) -> tuple[list[str], str]:
    """Save every image of the Compose stack (all profiles) into the bundle, when possible.

    Returns the images saved, or none and the reason. Images that should be there but are not
    on this machine stop the bundle: a workshop without its runner image fails on the day.
    """
    if not (project / "compose.yaml").is_file():
        return [], "no compose.yaml in this project"
    engine = container_engine()
    if engine is None:
        return [], "no docker or podman on the machine that made the bundle"
    if not succeeds([engine, "info"]):
        return [], f"{Path(engine).name} is installed but no container engine answers"
    compose = compose_command()
    if compose is None:
        return [], "no working Docker Compose on the machine that made the bundle"
    profiles = run("List the stack's profiles", [*compose, "config", "--profiles"]).split()
    every_profile = [flag for name in profiles for flag in ("--profile", name)]
    listed = run("List the stack's images", [*compose, *every_profile, "config", "--images"])
    images = sorted({line.strip() for line in listed.splitlines() if line.strip()})
    missing = [image for image in images if not succeeds([engine, "image", "inspect", image])]
    if missing:
        raise BundleError(
            f"images not on this machine: {', '.join(missing)}. Run `make up` for each runner "
            "you will use (it builds and pulls them), or leave the images out: "
            "`make bundle BUNDLE_ARGS=--no-images`."
        )
    target = bundle / "images" / "images.tar"
    target.parent.mkdir(parents=True, exist_ok=True)
    run(f"Save {len(images)} images", [engine, "save", "-o", str(target), *images])
    return images, ""


def create(project: Path, out: Path, models: Sequence[Path], *, images: bool) -> Path:
    """Write the bundle for `project` into `out` (replaced if it exists)."""
    uv = find_tool("uv")
    python = python_version(project)
    run = Runner(project)
    gguf = list(models) or sorted((project / "models").glob("*.gguf"))
    if not gguf:
        raise BundleError(
            "no model to bundle: run `make setup` and the CLI's `models pull` first, "
            "or pass --model PATH"
        )
    missing = [str(path) for path in gguf if not path.is_file()]
    if missing:
        raise BundleError(f"model files not found: {', '.join(missing)}")
    if out.exists():
        shutil.rmtree(out)
    wheels = out / "wheels"
    wheels.mkdir(parents=True)
    requirements = out / "requirements.txt"
    run(
        "Export the locked versions (uv.lock)",
        [uv, "export", "--frozen", "--all-groups", "--no-emit-project", "--no-hashes",
         "--format", "requirements-txt", "--quiet", "--output-file", str(requirements)],
    )
    pip = [uv, "tool", "run", "--python", python, "--from", PIP_REQUIREMENT, "pip"]
    for package, variables in build_variables(project).items():
        pin = locked_pin(requirements, package)
        if pin is None:
            continue
        # pip's wheel cache ignores build variables: a wheel built with other flags (a native
        # build, say) must not be reused, hence no cache for this one.
        Runner(project, {**os.environ, **variables})(
            f"Build {pin} with the project's build flags",
            [*pip, "wheel", "--quiet", "--disable-pip-version-check", "--no-cache-dir",
             "--no-deps", "--wheel-dir", str(wheels), pin],
        )
    run(
        "Build or download a wheel for every locked dependency (pip wheel)",
        [*pip, "wheel", "--quiet", "--disable-pip-version-check", "--requirement",
         str(requirements), "--find-links", str(wheels), "--wheel-dir", str(wheels)],
    )
    run(
        "Add uv and the build backend",
        [*pip, "download", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--only-binary", ":all:", "--dest", str(wheels), UV_REQUIREMENT,
         build_backend_requirement(project)],
    )
    (out / "models").mkdir()
    for path in gguf:
        sys.stdout.write(f"==> Copy model {path.name}\n")
        shutil.copy2(path, out / "models" / path.name)
    saved, note = save_images(project, out, run) if images else ([], "skipped (--no-images)")
    manifest = write_manifest(out, python=python, images=saved, note=note)
    files = manifest["files"]
    count = len(files) if isinstance(files, list) else 0
    size = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    sys.stdout.write(f"Bundle written to {out}: {count} files, {size / 1e6:.0f} MB.\n")
    if note:
        sys.stdout.write(f"Images not included: {note}.\n")
    return out


def install(project: Path, bundle: Path) -> None:
    """Set up `project` from `bundle` with no network: checks, uv, .venv, models, images."""
    manifest = read_manifest(bundle)
    sys.stdout.write(f"==> Check {bundle} against its manifest\n")
    problems = verify(bundle, manifest)
    if problems:
        listed = "\n  ".join(problems)
        raise BundleError(f"the bundle is damaged; copy it again:\n  {listed}")
    python = str(manifest.get("python"))
    interpreter = shutil.which(f"python{python}")
    if interpreter is None:
        raise BundleError(f"Python {python} is not on PATH (python{python}): install it first")
    probe = subprocess.run(  # noqa: S603 - the interpreter found on PATH
        [interpreter, "-c", "import sysconfig; print(sysconfig.get_platform())"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        raise BundleError(f"Python {python} ({interpreter}) does not run: install Python {python}")
    check_platform(manifest, python, probe.stdout.strip())
    env = {**os.environ, "UV_OFFLINE": "1", "PIP_NO_INDEX": "1", "UV_PYTHON_DOWNLOADS": "never"}
    for name in ("VIRTUAL_ENV", "UV_FIND_LINKS", "PIP_FIND_LINKS"):
        env.pop(name, None)  # the bundle is the only source
    run = Runner(project, env)
    wheels = str((bundle / "wheels").resolve())
    tools = project / ".bundle-tools"
    run("Create a tools environment", [interpreter, "-m", "venv", "--clear", str(tools)])
    run(
        "Install uv from the bundle (pip --no-index)",
        [str(tools / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index",
         "--find-links", wheels, UV_REQUIREMENT],
    )
    uv = str(tools / "bin" / "uv")
    run("Create .venv", [uv, "venv", "--clear", "--quiet", "--python", interpreter, ".venv"])
    index_off = ["--no-index", "--find-links", wheels, "--python", ".venv"]
    run(
        "Install the locked dependencies (--no-index)",
        [uv, "pip", "install", "--quiet", *index_off, "--requirement",
         str((bundle / "requirements.txt").resolve())],
    )
    run(
        "Install the project (editable)",
        [uv, "pip", "install", "--quiet", *index_off, "--no-deps", "--editable", "."],
    )
    models = project / "models"
    models.mkdir(exist_ok=True)
    for source in sorted((bundle / "models").glob("*")):
        sys.stdout.write(f"==> Copy model {source.name} to {models}\n")
        shutil.copy2(source, models / source.name)
    tar = bundle / "images" / "images.tar"
    engine = container_engine()
    if tar.is_file() and engine is not None:
        run("Load the container images", [engine, "load", "-i", str(tar)])
    elif tar.is_file():
        sys.stdout.write("Images not loaded: no docker or podman on this machine.\n")
    sys.stdout.write(
        "Done, offline. Next: `make check`, then the CLI's `doctor` for a preflight checklist.\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`create` (online, once) or `install` (offline, on every machine)."""
    parser = argparse.ArgumentParser(
        prog="bundle",
        description="Write an offline bundle of this project, or set a machine up from one.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create_cmd = commands.add_parser("create", help="write a bundle (needs the network)")
    create_cmd.add_argument("--out", type=Path, default=Path("dist/bundle"), help="folder")
    create_cmd.add_argument(
        "--model", type=Path, action="append", default=[], help="GGUF to include (repeatable)"
    )
    create_cmd.add_argument("--no-images", action="store_true", help="leave the images out")
    install_cmd = commands.add_parser("install", help="set this project up from a bundle")
    install_cmd.add_argument("bundle", type=Path, help="the bundle folder")
    args = parser.parse_args(argv)
    project = Path.cwd()
    try:
        if args.command == "create":
            create(project, args.out, args.model, images=not args.no_images)
        else:
            install(project, args.bundle)
    except BundleError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
