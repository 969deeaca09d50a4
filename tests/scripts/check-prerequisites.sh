#!/usr/bin/env bash
# check-prerequisites.sh base|build [PYTHON] — what a fresh machine needs before `make demo` and
# `make test`, checked up front so a missing piece is named with the package that provides it:
#
#   base   Python 3.11+ with its venv module, and git (everything else goes into .venv)
#   build  a C and C++ compiler and CMake 3.21+ (PyPI ships llama-cpp-python as source only)
set -euo pipefail

mode="${1:-base}"
python="${2:-python3}"
missing=()

# The package names for this machine's package manager: "apt dnf brew" entries.
install_hint() {
    local apt="$1" dnf="$2" brew="$3"
    if command -v apt-get >/dev/null 2>&1; then
        echo "sudo apt-get install $apt"
    elif command -v dnf >/dev/null 2>&1; then
        echo "sudo dnf install $dnf"
    elif command -v brew >/dev/null 2>&1; then
        echo "$brew"
    else
        echo "install $apt with your package manager"
    fi
}

version_at_least() {  # version_at_least 3.25.1 3.21
    printf '%s\n%s\n' "$2" "$1" | sort -V -C
}

if [[ "$mode" == base ]]; then
    if ! command -v "$python" >/dev/null 2>&1; then
        missing+=("$python (Python 3.11 or newer): $(install_hint python3 python3 'brew install python@3.12')")
    elif ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        missing+=("Python 3.11 or newer ($python is $("$python" -V 2>&1)): $(install_hint python3 python3 'brew install python@3.12'), or run make PYTHON=python3.12")
    elif ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        missing+=("the venv module of $python: $(install_hint python3-venv python3 'brew reinstall python@3.12')")
    fi
    command -v git >/dev/null 2>&1 || missing+=("git: $(install_hint git git 'xcode-select --install')")
elif [[ "$mode" == build ]]; then
    if ! command -v cc >/dev/null 2>&1 && ! command -v gcc >/dev/null 2>&1; then
        missing+=("a C compiler: $(install_hint build-essential 'gcc gcc-c++ make' 'xcode-select --install')")
    fi
    if ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1; then
        missing+=("a C++ compiler: $(install_hint 'build-essential g++' gcc-c++ 'xcode-select --install')")
    fi
    if ! command -v cmake >/dev/null 2>&1; then
        missing+=("CMake 3.21 or newer: $(install_hint cmake cmake 'brew install cmake')")
    else
        found="$(cmake --version | sed -n 's/^cmake version \([0-9.]*\).*/\1/p')"
        version_at_least "$found" 3.21 \
            || missing+=("CMake 3.21 or newer (found $found): $(install_hint cmake cmake 'brew upgrade cmake')")
    fi
else
    echo "usage: $0 base|build [PYTHON]" >&2
    exit 2
fi

if ((${#missing[@]})); then
    echo "This machine is missing what the template needs:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
fi
