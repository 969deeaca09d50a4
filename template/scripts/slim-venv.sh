#!/usr/bin/env bash
# slim-venv.sh VENV MODULE... — slims the app image's virtualenv in the Dockerfile's builder
# stage: removes what the app never loads (the list below says why each entry is safe), strips
# native extensions, and compiles bytecode for exactly what the app's commands import.
#
# MODULE...: what the image's commands import (the Dockerfile passes them). They are imported,
# then a model call and an embedding go through LiteLLM's Router on a mock response (no network),
# so the modules a call loads lazily are compiled too, and a removal that breaks the call path
# fails the build here instead of the first question in production. Bytecode is written with
# unchecked hashes: valid whatever the files' times after COPY. Modules loaded later (a hosted
# provider, an ingest format) compile in memory on first import.
#
# Using a feature listed below (a Bedrock model, say)? Delete its line and rebuild.
set -o errexit -o nounset -o pipefail
venv="${1:?usage: $0 VENV MODULE...}"
shift
site="$(echo "$venv"/lib/python3*/site-packages)"
[[ -d "$site" ]] || { echo "no site-packages in $venv" >&2; exit 1; }
before="$(du -sm "$site" | cut -f1)"

set -o noglob # the patterns below are expanded in $site, not here
remove=(
    # LiteLLM: the app uses it as a library (Router, OpenAI-compatible, Ollama and hosted
    # providers), never as the LiteLLM proxy server.
    litellm/proxy/_experimental/out         # the proxy's admin UI (static web build)
    litellm/proxy/*openapi*.json            # the proxy server's OpenAPI document
    litellm/proxy/swagger                   # the proxy's Swagger UI assets
    litellm/proxy/client                    # the proxy's command-line client
    litellm/proxy/example_config_yaml       # sample proxy configurations
    litellm/proxy/schema.prisma             # the proxy's database schema
    litellm/proxy/management_endpoints      # the proxy's admin API (keys, teams, users): only
    litellm/proxy/management_helpers        #   LiteLLM's own Prometheus and Slack callbacks
                                            #   import them outside the proxy; the app uses none
    litellm/rust_bridge/_native*            # optional native accelerator: chat and embeddings
                                            #   run in Python; LiteLLM falls back without it
    # HF tokenizers: LiteLLM counts tokens with them only for some hosted model families
    # (Claude, Llama, Cohere) when a provider reports no usage; tiktoken does the rest.
    tokenizers tokenizers-*.dist-info
    # The AWS SDK: imported only by LiteLLM's Bedrock and SageMaker providers.
    boto3 boto3-*.dist-info botocore botocore-*.dist-info s3transfer s3transfer-*.dist-info
    # huggingface_hub (where a runner downloads model files): HTTPS only, no Xet transfers (it
    # falls back to HTTPS), no `hf` command, no inference clients.
    hf_xet hf_xet-*.dist-info huggingface_hub/cli huggingface_hub/inference
    # numpy: vectors for the SQLite index (arrays, dot products, norms). Not its random
    # numbers, FFT, polynomials, masked arrays, SIMD test module or Fortran wrapper generator:
    # `import numpy` loads none of them, and neither the app nor its libraries use them.
    numpy/random numpy/fft numpy/polynomial numpy/ma numpy/_core/_simd.* numpy/f2py
    # Installers' file lists: the image has no package manager to uninstall with.
    *.dist-info/RECORD
)
set +o noglob
for pattern in "${remove[@]}"; do
    # shellcheck disable=SC2086  # globs wanted
    rm -rf "$site"/$pattern
done
rm -f "$venv"/bin/hf "$venv"/bin/f2py "$venv"/bin/numpy-config
# Test suites, type stubs, C headers and static libraries of the dependencies.
find "$site" -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} +
find "$site" -type f \( -name '*.pyi' -o -name '*.h' -o -name '*.a' \) -delete
# Debug symbols of native extensions; not the libraries auditwheel vendored in <pkg>.libs/,
# which patchelf rewrote (strip would break them).
if command -v strip >/dev/null; then
    find "$site" -type f -name '*.so*' -not -path '*.libs/*' -exec strip --strip-unneeded {} +
fi

"$venv/bin/python" -B - "$@" <<'PY'
import importlib
import os
import py_compile
import sys

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
for name in sys.argv[1:]:
    importlib.import_module(name)

from litellm.router import Router  # noqa: E402

deployment = {
    "model": "openai/local",
    "api_base": "http://127.0.0.1:9/v1",
    "api_key": "none",  # pragma: allowlist secret
}
router = Router(
    model_list=[
        {"model_name": "chat", "litellm_params": deployment},
        {"model_name": "embed", "litellm_params": deployment},
    ]
)
messages = [{"role": "user", "content": "ping"}]
router.completion(model="chat", messages=messages, mock_response="pong")
for _ in router.completion(model="chat", messages=messages, mock_response="pong", stream=True):
    pass
router.embedding(model="embed", input=["ping"], mock_response=[0.0, 1.0])

venv = os.path.realpath(sys.prefix) + os.sep
compiled = 0
for module in list(sys.modules.values()):
    source = getattr(module, "__file__", None) or ""
    if source.startswith(venv) and source.endswith(".py"):
        py_compile.compile(
            source, doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
        )
        compiled += 1
print(f"slim-venv: bytecode for {compiled} modules")
PY
echo "slim-venv: site-packages ${before} MB -> $(du -sm "$site" | cut -f1) MB"
