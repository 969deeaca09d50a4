"""llm.yaml: its schema, how it is read, and where in the file a problem is.

llm.yaml is a LiteLLM Router config (`model_list`, `router_settings`) whose entries name the
runner that serves them in `model_info.runner`. Values may say `${NAME:-default}` (default when
unset or empty) or `${NAME-default}` (default when unset): they resolve from the environment,
`.env` and secret files, so keys never sit in the file. A runner checks the fields of its own
entries (its module's `Params` and `Info`); this module imports nothing from the runners.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from ..errors import ConfigError, problems

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

Alias = Literal["chat", "embed"]
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}")
_UNSET = "<unset:{}>"
_UNSET_FOUND = re.compile(r"<unset:([A-Za-z_][A-Za-z0-9_]*)>")


class _Where:
    """Where in llm.yaml a value sits, from its YAML nodes (their lines are the file's)."""

    def __init__(self, path: Path, node: yaml.Node | None) -> None:
        self.path = path
        self.node = node

    def line(self, location: Sequence[str | int]) -> int | None:
        node, line = self.node, None
        for part in location:
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if key.value == str(part):
                        node, line = value, key.start_mark.line + 1
                        break
                else:
                    break
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    break
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line

    def error(
        self, exc: ValidationError, at: Sequence[str | int], *schemas: type[BaseModel]
    ) -> ConfigError:
        """Every problem: its line, the key, what is wrong, and a close name for a typo."""
        known = _field_names(*schemas, LlmConfig, Deployment, DeploymentInfo)
        return ConfigError(f"{self.path}: {problems(exc, at=at, line=self.line, known=known)}")


def _field_names(*schemas: type[BaseModel]) -> list[str]:
    names: set[str] = set()
    for schema in schemas:
        names.update(schema.model_fields)
        for field in schema.model_fields.values():
            for inner in getattr(field.annotation, "__args__", (field.annotation,)):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    names.update(inner.model_fields)
    return sorted(names)


class DeploymentInfo(BaseModel):
    """What the app (not LiteLLM) needs to know about a deployment. Fields of a runner's own
    (a GGUF file's source, say) are checked by that runner's `Info`, a subclass."""

    model_config = ConfigDict(extra="allow")

    runner: str
    query_prefix: str = ""
    document_prefix: str = ""
    min_similarity: float = Field(default=0.5, ge=-1.0, le=1.0)


class RunnerInfo(DeploymentInfo):
    """`model_info` of a runner with no fields of its own: anything else is a typo."""

    model_config = ConfigDict(extra="forbid")


class Deployment(BaseModel):
    """One `model_list` entry."""

    model_config = ConfigDict(extra="forbid")

    model_name: Alias
    litellm_params: dict[str, Any]
    model_info: DeploymentInfo

    @property
    def label(self) -> str:
        """The model as a person names it: the GGUF file, or the provider's model name."""
        path = self.litellm_params.get("model_path")
        return Path(str(path)).name if path else str(self.litellm_params["model"])

    @property
    def address(self) -> str:
        """Where it runs: `host:port` of its server (its URL stripped), else its model name."""
        return address(self.litellm_params.get("api_base")) or str(self.litellm_params["model"])


class LlmConfig(BaseModel):
    """llm.yaml, validated."""

    model_config = ConfigDict(extra="forbid")

    model_list: list[Deployment] = Field(min_length=1)
    router_settings: dict[str, Any] = Field(default_factory=dict)
    _where: _Where | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _replicas_agree(self) -> LlmConfig:
        """Replicas (entries of one alias for one runner) are one model served several times:
        none listed twice, and embedding replicas with the same prefixes and threshold (the
        vectors of two models do not mix in one index)."""
        for runner in self.runners():
            for alias in ("chat", "embed"):
                group = self.deployments(runner, alias)
                seen: set[str] = set()
                for deployment in group:
                    key = json.dumps(deployment.litellm_params, sort_keys=True, default=str)
                    if key in seen:
                        msg = f"{runner} lists the same {alias} deployment twice"
                        raise ValueError(msg)
                    seen.add(key)
                if alias == "embed" and len(group) > 1:
                    fields = {"query_prefix", "document_prefix", "min_similarity", "source"}
                    kinds = {d.model_info.model_dump_json(include=fields) for d in group}
                    if len(kinds) > 1:
                        msg = (
                            f"the embed replicas of {runner} differ in {', '.join(sorted(fields))}:"
                            " replicas must serve one embedding model (vectors of two do not mix)"
                        )
                        raise ValueError(msg)
        return self

    def runners(self) -> list[str]:
        """Runners in the order the file names them."""
        return list(dict.fromkeys(d.model_info.runner for d in self.model_list))

    def deployments(self, runner: str, alias: Alias) -> list[Deployment]:
        """The entries of one runner for one alias."""
        return [
            d for d in self.model_list if d.model_info.runner == runner and d.model_name == alias
        ]

    def check(
        self,
        deployments: Iterable[Deployment],
        info: type[BaseModel] = RunnerInfo,
        params: type[BaseModel] | None = None,
    ) -> None:
        """A runner's own check of its entries: `model_info` against `info`, `litellm_params`
        against `params`; a `ConfigError` naming the line of each problem."""
        for deployment in deployments:
            index = self.model_list.index(deployment)
            for part, schema in (("model_info", info), ("litellm_params", params)):
                if schema is None:
                    continue
                raw = getattr(deployment, part)
                try:
                    schema.model_validate(raw.model_dump() if isinstance(raw, BaseModel) else raw)
                except ValidationError as exc:
                    where = self._where or _Where(Path("llm.yaml"), None)
                    raise where.error(exc, ("model_list", index, part), schema) from None


def address(api_base: object) -> str | None:
    """`host:port` of a server URL (no user, password, path or query), None without one."""
    if not api_base:
        return None
    parts = urllib.parse.urlsplit(str(api_base))
    if not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # not a number: not worth a label
        return host
    return f"{host}:{port}"


def resolve(text: str, environment: Mapping[str, str]) -> str:
    """Replace `${NAME}`, `${NAME:-default}` and `${NAME-default}` with their values.

    A required variable that is unset becomes a marker, an error only if the deployments in use
    contain it (a hosted key is not needed to run a local model).
    """

    def value(match: re.Match[str]) -> str:
        name, operator, default = match.groups()
        found = environment.get(name)
        if operator == ":-" and not found:
            return default or ""
        if operator == "-" and found is None:
            return default or ""
        return _UNSET.format(name) if found is None else found

    return _REFERENCE.sub(value, text)


def check_set(deployments: Sequence[Deployment], path: Path) -> None:
    """A `ConfigError` naming every required variable the deployments use but nobody set."""
    dumped = " ".join(d.model_dump_json() for d in deployments)
    missing = sorted(set(_UNSET_FOUND.findall(dumped)))
    if missing:
        raise ConfigError(
            f"{path} needs {', '.join(missing)}: set it in the environment, in .env, or as a "
            "file of that name in the secrets directory (SECRETS_DIR)"
        )


def load_config(path: Path, environment: Mapping[str, str]) -> LlmConfig:
    """llm.yaml with its references resolved, or a `ConfigError` naming the problem and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path} (LLM_CONFIG): {exc.strerror}") from None
    # References resolve line by line, comments left out as blank lines: an error's line number
    # is the file's, and a `${...}` in a comment is never asked for.
    lines = [
        "" if line.lstrip().startswith("#") else resolve(line, environment).replace("\n", " ")
        for line in text.splitlines()
    ]
    try:
        node = yaml.compose("\n".join(lines), Loader=yaml.SafeLoader)
        raw = yaml.safe_load("\n".join(lines))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path} is not valid YAML:{where} {problem}") from None
    try:
        config = LlmConfig.model_validate(raw)
    except ValidationError as exc:
        raise _Where(path, node).error(exc, ()) from None
    config._where = _Where(path, node)  # noqa: SLF001 - set once, here
    return config
