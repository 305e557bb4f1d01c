#!/usr/bin/env bash
# Install llama-cpp-python into a virtual environment, compiling it at most once per machine.
#
#   scripts/ensure_llama_cpp.sh VENV_PYTHON
#
# llama-cpp-python ships as source only; compiling llama.cpp takes ~6 min on 2 cores and pip does
# not reuse its build cache across venvs. So the built wheel is kept in a wheel cache and reused:
#   1. `import llama_cpp` already works at the pinned version  -> nothing to do;
#   2. a wheel for that version is in the cache                 -> pip install it;
#   3. otherwise build the wheel into the cache (once, under a lock), then install it.
# Idempotent: safe to run again, and from several shells at once.
#
# Environment:
#   LLAMA_CPP_VERSION      version to install (default 0.3.36, the one mulligan is tested with)
#   MULLIGAN_WHEEL_CACHE   wheel cache (default ~/.cache/mulligan/wheels)
#   CMAKE_ARGS             llama.cpp build flags (default: portable AVX2/FMA/F16C build on x86_64)
#   CMAKE_BUILD_PARALLEL_LEVEL  compile jobs (default: number of CPUs)
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 VENV_PYTHON   (e.g. .venv/bin/python)" >&2
    exit 2
fi
PY="$1"
VERSION="${LLAMA_CPP_VERSION:-0.3.36}"
CACHE="${MULLIGAN_WHEEL_CACHE:-$HOME/.cache/mulligan/wheels}"

say() { echo "[ensure_llama_cpp] $*"; }

if ! "$PY" -c 'import sys' 2>/dev/null; then
    echo "[ensure_llama_cpp] error: $PY is not a working Python interpreter" >&2
    exit 1
fi
if ! "$PY" -m pip --version >/dev/null 2>&1; then
    echo "[ensure_llama_cpp] error: pip is not available in $PY (python -m ensurepip?)" >&2
    exit 1
fi

installed_version() {
    "$PY" -c 'import llama_cpp; print(llama_cpp.__version__)' 2>/dev/null || true
}

have="$(installed_version)"
if [[ "$have" == "$VERSION" ]]; then
    say "llama-cpp-python $VERSION already importable in $PY: nothing to do"
    exit 0
fi
if [[ -n "$have" ]]; then
    say "llama-cpp-python $have is installed in $PY; replacing it with $VERSION"
fi

find_wheel() {
    # The wheel is tagged py3-none-<platform>: one build serves every Python version.
    compgen -G "$CACHE/llama_cpp_python-${VERSION}-*.whl" | head -n 1 || true
}

install_wheel() {
    say "installing $1 into $PY (pip fetches numpy, diskcache, jinja2, typing-extensions if missing)"
    "$PY" -m pip install --quiet "$1"
}

wheel="$(find_wheel)"
if [[ -n "$wheel" ]] && install_wheel "$wheel"; then
    say "installed llama-cpp-python $(installed_version) from the wheel cache"
    exit 0
elif [[ -n "$wheel" ]]; then
    say "the cached wheel $wheel did not install on this platform; building a new one"
fi

# --- build once into the cache -------------------------------------------------------------------
mkdir -p "$CACHE"
if ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1; then
    echo "[ensure_llama_cpp] error: no C++ compiler found; install one (Debian: apt-get install build-essential)" >&2
    exit 1
fi
if [[ -z "${CMAKE_ARGS:-}" ]]; then
    if [[ "$(uname -m)" == "x86_64" ]]; then
        # Portable: runs on any x86-64 CPU with AVX2 (2013+), unlike GGML_NATIVE, which would
        # tie the cached wheel to the exact CPU it was built on.
        CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
    else
        CMAKE_ARGS="-DLLAVA_BUILD=OFF"
    fi
fi
export CMAKE_ARGS
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"

(
    # One build at a time: a second caller waits here, then finds the wheel the first one built.
    flock 9
    if [[ -z "$(find_wheel)" ]]; then
        say "building llama-cpp-python $VERSION into $CACHE (several minutes;" \
            "CMAKE_ARGS=$CMAKE_ARGS, $CMAKE_BUILD_PARALLEL_LEVEL jobs)"
        "$PY" -m pip wheel --no-deps --wheel-dir "$CACHE" "llama-cpp-python==$VERSION"
    else
        say "another process built the wheel meanwhile"
    fi
) 9>"$CACHE/.build.lock"

wheel="$(find_wheel)"
if [[ -z "$wheel" ]]; then
    echo "[ensure_llama_cpp] error: the build finished but no wheel is in $CACHE" >&2
    exit 1
fi
install_wheel "$wheel"
say "installed llama-cpp-python $(installed_version)"
