# Source this file (". scripts/env.sh") to use fer_perception without a system
# ROS: it activates .venv (ROS 2 Kilted wheels, the perception stack, the
# console scripts) and the colcon workspace in install/ (fer_msgs).
_fer_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
if [ ! -f "$_fer_root/install/local_setup.bash" ]; then
  echo "fer_perception is not set up yet: run 'make setup' in $_fer_root" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
. "$_fer_root/.venv/bin/activate"
export AMENT_PREFIX_PATH="${AMENT_PREFIX_PATH:+$AMENT_PREFIX_PATH:}$_fer_root/.venv"
export CMAKE_PREFIX_PATH="${CMAKE_PREFIX_PATH:+$CMAKE_PREFIX_PATH:}$_fer_root/.venv"
# shellcheck disable=SC1091
. "$_fer_root/install/local_setup.bash"
export FER_DATA_DIR="${FER_DATA_DIR:-$(cd "$_fer_root/.." && pwd)/shared/data}"
unset _fer_root
