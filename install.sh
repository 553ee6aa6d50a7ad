#!/usr/bin/env bash
# Set up this project on Debian/Ubuntu with Python 3.11.
#   bash install.sh                  # .venv (or the active virtualenv), pinned stack, project editable
#   bash install.sh --with-mimicgen  # additionally NVIDIA's MimicGen from its git repository at a pinned commit
# Torch and torchvision are installed first and pinned, then requirements.txt is constrained to that torch so pip
# never swaps it. A second run compares a stamp of the pins and skips pip when nothing changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

TORCH_PINS=("torch==2.14.1" "torchvision==0.29.1")
MIMICGEN_URL="https://github.com/NVlabs/mimicgen.git"
MIMICGEN_COMMIT="9d2a459a6dba39454c272e1d39de441ba022aead"

with_mimicgen=0
for arg in "$@"; do
  case "$arg" in
    --with-mimicgen) with_mimicgen=1 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (known: --with-mimicgen)" >&2; exit 2 ;;
  esac
done

log() { printf '[install] %s\n' "$*"; }

# MimicGen declares mujoco==2.3.2 and the packages of its own dataset tools (gdown, chardet, imageio-ffmpeg), which
# it is installed without: its environments run on the pinned mujoco and robosuite 1.4.1. Any other report fails.
pip_check() {
  local report others
  report=$("$py" -m pip check 2>&1) && return 0
  others=$(grep -v '^mimicgen ' <<<"$report" || true)
  if [ -n "$others" ]; then
    printf '%s\n' "$report" >&2
    echo "install.sh: pip check found broken requirements (above)" >&2
    exit 1
  fi
  log "pip check: only MimicGen's own declared requirements differ (expected; its environments use the pins):"
  printf '  %s\n' "${report//$'\n'/$'\n'  }"
}

# --- system libraries for headless MuJoCo rendering (EGL, with OSMesa as the fallback) ---
missing_libs=()
ldconfig -p | grep -q 'libEGL.so.1' || missing_libs+=(libegl1)
ldconfig -p | grep -q 'libGL.so.1' || missing_libs+=(libgl1)
ldconfig -p | grep -q 'libOSMesa.so' || missing_libs+=(libosmesa6)
if ((${#missing_libs[@]})); then
  apt_packages=(libegl1 libgl1 libgl1-mesa-dri libosmesa6)
  if [ "$(id -u)" = 0 ]; then sudo_cmd=(); elif sudo -n true 2>/dev/null; then sudo_cmd=(sudo -n); else sudo_cmd=(none); fi
  if [ "${sudo_cmd[0]:-}" = none ]; then
    log "rendering libraries missing (${missing_libs[*]}); without root, install them with:"
    log "  sudo apt-get install -y ${apt_packages[*]}"
  else
    log "installing rendering libraries: ${apt_packages[*]}"
    "${sudo_cmd[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${apt_packages[@]}" \
      || log "apt-get failed; MUJOCO_GL=egl needs libegl1, MUJOCO_GL=osmesa needs libosmesa6"
  fi
fi

# --- Python environment ---
if [ -n "${VIRTUAL_ENV:-}" ]; then
  py="$VIRTUAL_ENV/bin/python"
  log "using the active virtualenv $VIRTUAL_ENV"
else
  if [ ! -x .venv/bin/python ]; then
    base_python=$(command -v python3.11 || command -v python3)
    "$base_python" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
      || { echo "install.sh: Python 3.11 is required (found $("$base_python" --version))" >&2; exit 1; }
    log "creating .venv with $base_python"
    "$base_python" -m venv .venv
  fi
  py="$PWD/.venv/bin/python"
fi

stamp_file="$("$py" -c 'import sys; print(sys.prefix)')/.wmpo-install-stamp"
stamp="$(cat requirements.txt pyproject.toml; printf '%s\n' "${TORCH_PINS[@]}")"
if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ] && "$py" -c 'import wmpo, torch, robosuite' 2>/dev/null; then
  log "Python packages already installed for these pins; nothing to do"
else
  log "installing ${TORCH_PINS[*]}"
  "$py" -m pip install -q --upgrade pip
  "$py" -m pip install -q "${TORCH_PINS[@]}"
  constraints=$(mktemp)
  trap 'rm -f "$constraints"' EXIT
  printf '%s\n' "${TORCH_PINS[@]}" > "$constraints"
  log "installing requirements.txt (constrained to the torch pins)"
  "$py" -m pip install -q -r requirements.txt -c "$constraints"
  log "installing this project (editable)"
  "$py" -m pip install -q --no-deps -e .
  pip_check
  printf '%s' "$stamp" > "$stamp_file"
fi

if ((with_mimicgen)); then
  if "$py" -m wmpo.envs.mimicgen_install 2>/dev/null; then
    log "MimicGen already installed and registers all four released tasks"
  else
    "$py" -m pip show -q mimicgen >/dev/null 2>&1 && log "the installed MimicGen is incomplete; reinstalling it editable"
    # A non-editable wheel misses mimicgen.models and the XML/mesh assets, so MimicGen is installed editable from a
    # clone: MIMICGEN_SRC (an existing clone) or <venv>/src/mimicgen at the pinned commit.
    src="${MIMICGEN_SRC:-$("$py" -c 'import sys; print(sys.prefix)')/src/mimicgen}"
    if [ -z "${MIMICGEN_SRC:-}" ]; then
      log "cloning MimicGen from $MIMICGEN_URL at $MIMICGEN_COMMIT into $src"
      if ! { [ -d "$src/.git" ] || git clone -q "$MIMICGEN_URL" "$src"; } || ! git -C "$src" checkout -q "$MIMICGEN_COMMIT"; then
        echo "install.sh: could not clone MimicGen from $MIMICGEN_URL (no network or no git access)." >&2
        echo "  The rest of the project is installed and uses the built-in tasks (backend=builtin)." >&2
        echo "  Retry with network access, or point MIMICGEN_SRC at a clone: MIMICGEN_SRC=/path/to/mimicgen bash install.sh --with-mimicgen" >&2
        exit 3
      fi
    fi
    [ -f "$src/setup.py" ] || { echo "install.sh: MIMICGEN_SRC=$src holds no setup.py of a MimicGen clone" >&2; exit 3; }
    "$py" -m pip uninstall -q -y mimicgen >/dev/null 2>&1 || true
    log "installing MimicGen editable from $src"
    "$py" -m pip install -q --no-deps -e "$src"
    pip_check
    if ! "$py" -m wmpo.envs.mimicgen_install; then
      echo "install.sh: MimicGen from $src does not serve the four released tasks (see above)" >&2
      exit 3
    fi
    log "MimicGen registers Square_D0, StackThree_D0, ThreePieceAssembly_D0 and Coffee_D0"
  fi
fi

log "done. Activate with: source ${VIRTUAL_ENV:-.venv}/bin/activate"
