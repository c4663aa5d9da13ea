#!/usr/bin/env bash
# Create .local/venv with every package pinned in requirements/constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."

pick_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; raise SystemExit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

if ! python=$(pick_python); then
  echo "error: Python 3.11 or newer is required. Install it (Debian/Ubuntu: apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11." >&2
  exit 1
fi

venv=.local/venv
if [ ! -x "$venv/bin/python" ]; then
  echo "[venv] creating $venv with $($python --version)"
  "$python" -m venv "$venv" || {
    echo "error: '$python -m venv' failed; install the venv module (Debian/Ubuntu: apt-get install python3-venv)." >&2
    exit 1
  }
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
echo "[venv] installing pinned packages (first run takes about a minute)"
"${pip[@]}" install -c requirements/constraints.txt setuptools
"${pip[@]}" install --no-build-isolation -c requirements/constraints.txt -r requirements/dev.txt \
  --config-settings editable_mode=compat \
  -e contracts -e runtime -e services/partners -e services/points -e services/redemption -e services/console
touch "$venv/.installed"
echo "[venv] ready: $venv"
