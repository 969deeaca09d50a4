"""Models: llm.yaml (`config`), the gateway every call goes through (`gateway`), and LiteLLM's
errors in the app's words (`translate`)."""

from .config import Deployment, DeploymentInfo, LlmConfig, address, load_config, resolve
from .gateway import REPLICA_COOLDOWN_SECONDS, ChatModel, Gateway, Generation, Usage

__all__ = [
    "REPLICA_COOLDOWN_SECONDS",
    "ChatModel",
    "Deployment",
    "DeploymentInfo",
    "Gateway",
    "Generation",
    "LlmConfig",
    "Usage",
    "address",
    "load_config",
    "resolve",
]
