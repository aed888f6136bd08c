#!/usr/bin/env bash
# Set up fer_perception without a system ROS: a Python 3.11 virtual environment
# in .venv with ROS 2 Kilted and the perception stack from PyPI wheels, the
# wheels' CMake exports patched, and the workspace (fer_msgs, fer_perception)
# built with colcon into install/; as root, Xvfb for the window tests. Safe to run
# again: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"

find_python() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      command -v "$candidate"; return
    fi
  done
  echo "fer_perception needs Python 3.11 (the ROS 2 Kilted wheels are built for it); set PYTHON=/path/to/python3.11" >&2
  exit 1
}

if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  "$(find_python)" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"

stamp="$VENV/.fer_requirements.sha256"
want=$(sha256sum requirements.txt setup.py | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== installing Python dependencies (requirements.txt)"
  python -m pip install --quiet --upgrade pip 'setuptools<80' wheel
  python -m pip install --quiet -r requirements.txt
  python -m pip install --quiet --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
fi

python scripts/patch_ros_wheels.py "$VENV" >/dev/null

export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
echo "== building the workspace (colcon)"
COLCON_DEFAULTS_FILE="$ROOT/colcon_defaults.yaml" colcon --log-base "$ROOT/log" build \
  --build-base "$ROOT/build" --install-base "$ROOT/install" \
  --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF \
  --event-handlers console_cohesion- summary+ status- >/dev/null \
  || { echo "colcon build failed; see $ROOT/log/latest_build" >&2; exit 1; }

# The window tests show the live window on a virtual X display (Xvfb) and drive it as a person would (XTEST key
# presses, xwininfo): Debian's xvfb, x11-utils and libxtst6.
if ! command -v Xvfb >/dev/null || ! command -v xwininfo >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing xvfb, x11-utils, libxtst6 (a virtual display for the window tests)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb x11-utils libxtst6; } \
      >/dev/null 2>&1 || echo "could not install xvfb; the window tests will skip" >&2
  else
    echo "note: the window tests need sudo apt-get install xvfb x11-utils libxtst6; they skip without it" >&2
  fi
fi
echo "== set up; source scripts/env.sh to use it in a shell"
