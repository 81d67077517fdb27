#!/usr/bin/env bash
# One-command setup for gr-specenc on Debian bookworm (run as root, or as a user when the apt
# packages are already there). Idempotent: every step is skipped when already done, so a second
# run takes seconds.
#
#   scripts/setup.sh           apt packages, .venv, pip requirements, CMake build + install
#   scripts/setup.sh --deps    apt packages, .venv, pip requirements only
#   scripts/setup.sh --build   CMake configure (once) + build + install into .venv only
#   scripts/setup.sh --gui     extra apt packages for GRC screenshots under Xvfb
#
# Everything besides apt stays inside the checkout: .venv is also the install prefix.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
BUILD="$ROOT/build"
STAMPS="$ROOT/.stamps"
JOBS="${JOBS:-2}"

APT_PACKAGES=(gnuradio gnuradio-dev cmake g++ make pkg-config pybind11-dev libfftw3-dev
              python3-venv python3-pip python3-numpy python3-scipy)
GUI_PACKAGES=(xvfb xauth imagemagick gir1.2-gtk-3.0 python3-gi-cairo librsvg2-common adwaita-icon-theme)

log() { echo "setup: $*"; }

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing Debian packages: ${missing[*]} (run this script as root once)" >&2
        exit 1
    fi
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

make_venv() {
    if [ ! -x "$PY" ]; then
        log "creating $VENV (system site packages: GNU Radio, numpy, scipy from Debian)"
        /usr/bin/python3 -m venv --system-site-packages "$VENV"
    fi
    # The stamp lives in the venv, so a venv made anew (rm -rf, venv --clear) is installed into (audit 50, 51).
    local stamp="$VENV/specenc-requirements.sha256" want have=""
    want="$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)"
    [ -f "$stamp" ] && have="$(cat "$stamp")"
    if [ "$want" != "$have" ]; then
        log "pip install -r requirements.txt"
        "$PY" -m pip install -q --disable-pip-version-check -r "$ROOT/requirements.txt"
        echo "$want" > "$stamp"
    fi
}

build_install() {
    local site
    # One build at a time: engineers and CI may share this checkout.
    mkdir -p "$STAMPS"
    exec 9>"$STAMPS/build.lock"
    flock 9
    site="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    # Configure once; a build folder made for another checkout or prefix is configured afresh.
    if ! grep -qs "^CMAKE_INSTALL_PREFIX:PATH=$VENV\$" "$BUILD/CMakeCache.txt"; then
        log "cmake configure (prefix $VENV)"
        rm -rf "$BUILD"
        cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
            -DCMAKE_INSTALL_PREFIX="$VENV" \
            -DPYTHON_EXECUTABLE="$PY" \
            -DGR_PYTHON_DIR="$site" \
            -DENABLE_DOXYGEN=OFF >/dev/null
    fi
    cmake --build "$BUILD" -j "$JOBS"
    cmake --install "$BUILD" > "$BUILD/install.log"
    log "installed into $VENV ($(grep -c "Installing:" "$BUILD/install.log") files updated; see build/install.log)"
}

case "${1:-all}" in
    all) apt_install "${APT_PACKAGES[@]}"; make_venv; build_install ;;
    --deps) apt_install "${APT_PACKAGES[@]}"; make_venv ;;
    --build) build_install ;;
    --gui) apt_install "${GUI_PACKAGES[@]}" ;;
    *) echo "usage: $0 [--deps|--build|--gui]" >&2; exit 2 ;;
esac
