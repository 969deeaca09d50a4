"""Models on disk: pull the pinned GGUF files (or Ollama models) the runner needs, list them.

A GGUF deployment in llm.yaml names its source (`model_info.source`: a Hugging Face repository,
a file, a commit and the file's sha256). `models pull` downloads it with huggingface_hub (resumed
when interrupted; `HF_ENDPOINT` and `HF_TOKEN` from the settings) and refuses a file whose sha256
differs. A file already there with the right checksum is not downloaded again, so pulling is
safe offline; a file there with another checksum is replaced only if a pull put it there (a
receipt beside it says so), so a model of the team's own at that path is never overwritten.
For Ollama, the models are pulled through Ollama's own API.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ModelError

if TYPE_CHECKING:
    from collections.abc import Callable

    from .config import Settings
    from .llm import Deployment, Gateway, ModelSource


@dataclass(frozen=True)
class ModelFile:
    """A model file a deployment uses, and whether it is in place."""

    deployment: Deployment
    path: Path | None

    @property
    def present(self) -> bool:
        return self.path is not None and self.path.is_file()


def files(gateway: Gateway) -> list[ModelFile]:
    """The model files of the runner's deployments (a server's deployment may name none)."""
    return [
        ModelFile(
            d,
            Path(str(path))
            if (path := d.litellm_params.get("model_path") or d.model_info.model_path)
            else None,
        )
        for d in gateway.chat + gateway.embeds
    ]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def pull(gateway: Gateway, settings: Settings, say: Callable[[str], None]) -> None:
    """Fetch every model the runner needs; raises `ModelError` on a download or checksum error."""
    if gateway.runner == "ollama":
        for deployment in gateway.chat + gateway.embeds:
            pull_ollama(deployment, say)
        return
    for model in files(gateway):
        source = model.deployment.model_info.source
        if model.path is None or source is None:
            say(f"{model.deployment.label}: nothing to pull (no file, or no source in llm.yaml)")
            continue
        if model.present:
            actual = sha256_of(model.path)
            if actual == source.sha256:
                say(f"{model.path}: present, sha256 verified")
                continue
            if actual != _pulled(model.path):
                raise ModelError(
                    f"{model.path} is not the file llm.yaml pins for {model.deployment.label} "
                    f"({source.repo}/{source.file}, sha256 {source.sha256[:12]}...; this file's "
                    f"is {actual[:12]}...) and `models pull` did not put it there: it was left as "
                    "it is. To use it, pin it in llm.yaml (model_info.source) or remove the "
                    "source; to get the pinned file, move this one away and pull again"
                )
        say(f"{model.path}: downloading {source.repo}/{source.file} at {source.revision[:12]}")
        _download(source, model.path, settings)
        _receipt(model.path).write_text(source.sha256 + "\n", encoding="utf-8")
        say(f"{model.path}: downloaded, sha256 verified")


def _receipt(path: Path) -> Path:
    """Where `models pull` notes the sha256 of a file it put there: only such a file is ever
    replaced by a pull (a model of the team's own at the same path is left alone)."""
    return path.with_name(f".{path.name}.pulled")


def _pulled(path: Path) -> str | None:
    try:
        return _receipt(path).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _download(source: ModelSource, target: Path, settings: Settings) -> None:
    from huggingface_hub import hf_hub_download  # noqa: PLC0415 - only pulls need it
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError  # noqa: PLC0415

    target.parent.mkdir(parents=True, exist_ok=True)
    environment = settings.environment
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".pull-") as scratch:
        try:
            fetched = Path(
                hf_hub_download(
                    repo_id=source.repo,
                    filename=source.file,
                    revision=source.revision,
                    local_dir=scratch,
                    endpoint=environment.get("HF_ENDPOINT") or None,
                    token=environment.get("HF_TOKEN") or False,
                )
            )
        except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
            raise ModelError(
                f"cannot download {source.repo}/{source.file}: {str(exc).splitlines()[0]}. "
                "Check the network (HF_ENDPOINT for a mirror, HF_TOKEN for a gated model), "
                f"or copy the file to {target} by hand"
            ) from None
        actual = sha256_of(fetched)
        if actual != source.sha256:
            raise ModelError(
                f"{source.repo}/{source.file} has sha256 {actual}, llm.yaml pins "
                f"{source.sha256}: the file was not kept. A changed upload or a corrupt "
                "mirror; check the pin."
            )
        shutil.move(fetched, target)


def pull_ollama(deployment: Deployment, say: Callable[[str], None]) -> None:
    name = str(deployment.litellm_params["model"]).split("/", 1)[1]
    base = str(deployment.litellm_params.get("api_base", "http://localhost:11434"))
    request = urllib.request.Request(  # noqa: S310 - the configured Ollama URL
        f"{base}/api/pull", data=json.dumps({"model": name}).encode(), method="POST"
    )
    say(f"ollama: pulling {name} from {base}")
    try:
        with urllib.request.urlopen(request, timeout=3600) as response:  # noqa: S310
            for line in response:
                event = json.loads(line or b"{}")
                if "error" in event:
                    raise ModelError(f"Ollama could not pull {name}: {event['error']}")
    except OSError as exc:
        raise ModelError(
            f"cannot reach Ollama at {base} ({exc}): start it, then pull again"
        ) from None
    say(f"ollama: {name} ready")
