#!/usr/bin/env bash
# Set up everything the pipeline needs on a fresh machine, idempotently:
#   1. ffmpeg (decoding; its ffprobe checks the demo clips in the tests) from the system package
#      manager, when not already on PATH;
#   2. jemalloc (Debian's libjemalloc2), the Dask workers' allocator (pipeline/worker_env.py);
#   3. Chromium (Debian's `chromium` package), in which the tests render the HTML run report headless;
#   4. a virtual environment in .venv with this package and its test extra, every package at the
#      version scripts/constraints.txt pins.
# Re-running is cheap: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# apt_install PACKAGE WHY COMMAND...: install PACKAGE with apt-get unless every COMMAND is already on PATH
# (a COMMAND lib:NAME is a shared library instead, looked up as pipeline/worker_env.py does).
apt_install() {
    local package=$1 why=$2
    shift 2
    local missing=0
    for cmd in "$@"; do
        case $cmd in
            lib:*) python3 -c "import ctypes.util, sys; sys.exit(not ctypes.util.find_library('${cmd#lib:}'))" \
                       || missing=1 ;;
            *) command -v "$cmd" >/dev/null || missing=1 ;;
        esac
    done
    [ "$missing" -eq 1 ] || return 0
    echo "bootstrap: installing $package with apt-get ($why)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$package" >/dev/null
}
apt_install ffmpeg "decoding" ffmpeg ffprobe
apt_install libjemalloc2 "the Dask workers' allocator: flat memory" lib:jemalloc
apt_install chromium "the report test renders its HTML headless" chromium

PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv with $PY"
    "$PY" -m venv .venv
fi
# pip run quietly, minus one machine-specific warning per package about unreachable local index folders.
pip_quiet() {
    .venv/bin/python -m pip "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    return "${PIPESTATUS[0]}"
}
# Every package at the exact version of scripts/constraints.txt (what produced the documented figures).
stamp=.venv/.installed-$(cat setup.cfg scripts/constraints.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
    echo "bootstrap: installing Python packages into .venv (first time: several minutes, torch is large)"
    pip_quiet install -q --upgrade pip
    pip_quiet install -q -c scripts/constraints.txt -e '.[test]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi
