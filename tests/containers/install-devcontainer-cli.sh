#!/usr/bin/env bash
# install-devcontainer-cli.sh [DIR] — the Dev Containers CLI (@devcontainers/cli, the spec's
# reference implementation), pinned, installed with npm into DIR (default build/devcontainer-cli
# in the template repository; devcontainer.sh copies it to where its made-up host user can read
# it). Prints the path of its entry point (devcontainer.js). Needs node and npm (npm's registry
# is reachable here); nothing else is installed. Concurrent runs wait for each other.
#
#   node "$(tests/containers/install-devcontainer-cli.sh)" --version
set -o errexit -o nounset -o pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

version="${DEVCONTAINER_CLI_VERSION:-0.89.0}"
dir="${1:-$here/../../build/devcontainer-cli}"
need_cmd node npm flock
mkdir -p "$dir"
exec 9>"$dir/.install.lock"
flock 9
entry="$dir/node_modules/@devcontainers/cli/devcontainer.js"
have="$(node -p "require('$dir/node_modules/@devcontainers/cli/package.json').version" 2>/dev/null || true)"
if [[ "$have" != "$version" ]]; then
    log "installing @devcontainers/cli@$version into $dir"
    npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error \
        "@devcontainers/cli@$version" >&2
fi
[[ -f "$entry" ]] || die "no $entry after npm install"
log "devcontainer CLI $(node "$entry" --version) at $entry"
echo "$(cd "$(dirname "$entry")" && pwd)/devcontainer.js"
