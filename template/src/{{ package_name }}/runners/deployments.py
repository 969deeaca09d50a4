"""Which LiteLLM deployments serve the app, read from the Router config file (llm.yaml).

llm.yaml is a LiteLLM Router config: `model_list` entries with `model_name` (the alias the app
calls: `chat` or `embed`), `litellm_params` and `model_info`, plus `router_settings`. Each entry
names its runner in `model_info.runner`; a `chat` entry may name the prompt style it serves in
`model_info.prompt_style`. Only the chosen runner's entries (and, for fallback, the hosted
runner's chat entries) go into the Router, so a setting only one runner needs is never required
by another.

Values may refer to settings the way LiteLLM refers to the environment: `os.environ/NAME` as a
whole value (dropped when the setting is unset), or `${NAME}` inside a string (required;
`${NAME:-default}` gives a default when the setting is unset). They
are resolved from `Settings`, not from `os.environ`, so `.env` and the secrets directory count
too and no other module reads the environment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import yaml
from pydantic import SecretStr

from ..settings import ConfigError, MissingSettingError, Requirement  # noqa: TID252

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..settings import Settings  # noqa: TID252
    from .base import PromptStyle, Runner

Alias = Literal["chat", "embed"]
ALIASES: tuple[Alias, ...] = ("chat", "embed")
FALLBACK_GROUP = "chat-fallback"
ENV_PREFIX = "os.environ/"
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DROP = object()


@dataclass(frozen=True)
class Deployment:
    """One `model_list` entry, references unresolved."""

    alias: Alias
    runner: str
    prompt_style: PromptStyle | None
    litellm_params: dict[str, Any]
    model_info: dict[str, Any]


@dataclass(frozen=True)
class LLMConfig:
    """The parsed Router config file."""

    path: Path
    deployments: tuple[Deployment, ...]
    router_settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RouterPlan:
    """Everything needed to build a LiteLLM Router for one runner and prompt style."""

    model_list: list[dict[str, Any]]
    router_settings: dict[str, Any]
    fallbacks: list[dict[str, list[str]]]
    chat_model: str
    embed_model: str | None


def load_llm_config(path: Path) -> LLMConfig:
    """Parses llm.yaml, with errors that name the file and the entry."""
    if not path.is_file():
        raise ConfigError(
            f"LLM_CONFIG={path}: no such file (relative paths start at the working directory "
            f"{Path.cwd()}). Run from the project root or set LLM_CONFIG to llm.yaml's path."
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("model_list"), list):
        raise ConfigError(f"{path} must be a LiteLLM Router config with a `model_list` list")
    deployments = tuple(
        _parse_deployment(path, index, entry) for index, entry in enumerate(raw["model_list"])
    )
    router_settings = raw.get("router_settings") or {}
    if not isinstance(router_settings, dict):
        raise ConfigError(f"{path}: `router_settings` must be a mapping")
    return LLMConfig(path, deployments, cast("dict[str, Any]", router_settings))


def _parse_deployment(path: Path, index: int, entry: object) -> Deployment:
    where = f"{path}: model_list[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a mapping")
    alias = entry.get("model_name")
    if alias not in ALIASES:
        raise ConfigError(f"{where}: model_name must be one of {', '.join(ALIASES)}")
    params = entry.get("litellm_params")
    info = entry.get("model_info") or {}
    if not isinstance(params, dict) or "model" not in params:
        raise ConfigError(f"{where}: litellm_params with a `model` is required")
    if not isinstance(info, dict) or not isinstance(info.get("runner"), str):
        raise ConfigError(f"{where}: model_info.runner must name the runner it serves")
    style = info.get("prompt_style")
    if style not in (None, "chat", "completion"):
        raise ConfigError(f"{where}: model_info.prompt_style must be chat or completion")
    return Deployment(
        alias=cast("Alias", alias),
        runner=info["runner"],
        prompt_style=cast("PromptStyle | None", style),
        litellm_params=cast("dict[str, Any]", params),
        model_info=cast("dict[str, Any]", info),
    )


def _reveal(value: object) -> object:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path):
        return str(value)
    return value


def resolve(value: object, values: Mapping[str, object], where: str) -> object:
    """Replaces `os.environ/NAME` and `${NAME}` with settings values, recursively."""
    if isinstance(value, dict):
        resolved = {key: resolve(item, values, f"{where} [{key}]") for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _DROP}
    if isinstance(value, list):
        return [item for item in (resolve(x, values, where) for x in value) if item is not _DROP]
    if not isinstance(value, str):
        return value
    if value.startswith(ENV_PREFIX):
        found = _lookup(value.removeprefix(ENV_PREFIX), values, where)
        return _DROP if found is None else _reveal(found)

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = _lookup(name, values, where)
        if found is None and default is not None:
            return default
        if found is None:
            raise MissingSettingError([Requirement(name, f"{where} uses it")])
        return str(_reveal(found))

    return _INTERPOLATION.sub(substitute, value)


def _lookup(name: str, values: Mapping[str, object], where: str) -> object:
    if name not in values:
        raise ConfigError(f"{where} refers to {name}, which is not a setting of this app")
    return values[name]


def _resolved_params(deployment: Deployment, values: Mapping[str, object]) -> dict[str, Any]:
    where = f"the llm.yaml {deployment.alias} deployment for MODEL_RUNNER={deployment.runner}"
    params = cast("dict[str, Any]", resolve(deployment.litellm_params, values, where))
    if not params.get("model"):
        model = deployment.litellm_params["model"]
        name = str(model).removeprefix(ENV_PREFIX)
        raise MissingSettingError([Requirement(name, f"{where} uses it as its model")])
    return params


def _entry(name: str, deployment: Deployment, params: dict[str, Any]) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": params, "model_info": dict(deployment.model_info)}


def _display_name(params: Mapping[str, Any]) -> str:
    """The model as a person would name it: the GGUF file for in-process models."""
    model = str(params["model"])
    if params.get("model_path"):
        return f"{model.split('/', 1)[0]}/{Path(str(params['model_path'])).name}"
    return model


def _fallback_wanted(settings: Settings) -> bool:
    return (
        settings.hosted_fallback
        and settings.model_runner != "hosted"
        and settings.hosted_api_key is not None
        and bool(settings.hosted_model)
    )


def plan(
    config: LLMConfig, settings: Settings, runner: Runner, style: PromptStyle | None
) -> RouterPlan:
    """Selects and resolves the deployments for the runner, one prompt style (None: all)."""
    values = settings.by_variable()
    mine = [d for d in config.deployments if d.runner == runner.name]
    chats = [d for d in mine if d.alias == "chat" and style in (None, d.prompt_style or style)]
    if not chats:
        styles = f"prompt style {style}" if style else "any prompt style"
        raise ConfigError(
            f"{config.path} has no chat deployment for MODEL_RUNNER={runner.name} with {styles}"
            + ("; set PROMPT_STYLE=chat" if style == "completion" else "")
        )
    model_list = [_entry("chat", d, _resolved_params(d, values)) for d in chats]
    embed_model = None
    if runner.embeddings_enabled(settings):
        embeds = [d for d in mine if d.alias == "embed"]
        if not embeds:
            raise ConfigError(
                f"{config.path} has no embed deployment for MODEL_RUNNER={runner.name}, "
                "but an embedding model is configured"
            )
        model_list += [_entry("embed", d, _resolved_params(d, values)) for d in embeds]
        embed_model = _display_name(model_list[-1]["litellm_params"])
    fallbacks = [
        dict(item)
        for item in cast("list[dict[str, list[str]]]", config.router_settings.get("fallbacks", []))
    ]
    if _fallback_wanted(settings):
        hosted = [d for d in config.deployments if d.runner == "hosted" and d.alias == "chat"]
        model_list += [_entry(FALLBACK_GROUP, d, _resolved_params(d, values)) for d in hosted]
        if hosted:
            fallbacks.append({"chat": [FALLBACK_GROUP]})
    router_settings = cast(
        "dict[str, Any]",
        resolve(
            {k: v for k, v in config.router_settings.items() if k != "fallbacks"},
            values,
            "llm.yaml router_settings",
        ),
    )
    return RouterPlan(
        model_list=model_list,
        router_settings=router_settings,
        fallbacks=fallbacks,
        chat_model=_display_name(model_list[0]["litellm_params"]),
        embed_model=embed_model,
    )
