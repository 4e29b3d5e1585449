#!/usr/bin/env bash
# One-command set-up for imbfocal on a fresh clone (CPU machine).
#
# Creates .venv, installs torch==2.13.0 only when no torch is present (never an unpinned torch:
# that pulls several GB of CUDA packages), builds mmcv 2.1.0 with its ops from source when
# `mmcv.ops` does not import, then installs MMDetection 3.3, MMEngine 0.10 and this package
# (editable, with the test extras). Idempotent: a second run checks and says so in one line.
#
# Environment:
#   IMBFOCAL_VENV   where the virtual environment lives (default: <repo>/.venv)
#   PYTHON          the interpreter that creates it (default: python3)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${IMBFOCAL_VENV:-$repo/.venv}"
py="$venv/bin/python"
say() { echo "[setup_env] $*"; }
# This machine's pip config names local indexes that lack most projects; pip warns once per
# project it looks up there. Those warnings are noise, everything else pip says is kept.
pip_install() {
  "$py" -m pip --disable-pip-version-check -q install "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

if [ ! -x "$py" ]; then
  say "creating virtual environment $venv"
  "${PYTHON:-python3}" -m venv "$venv"
  pip_install --upgrade "pip>=23.1"
fi

# Build tools. setuptools>=82 no longer ships pkg_resources, which mmengine still imports.
if ! "$py" - <<'PY' 2>/dev/null; then
import importlib.metadata as m, sys
v = int(m.version("setuptools").split(".")[0])
m.version("wheel"); m.version("ninja"); m.version("numpy")
sys.exit(0 if 77 <= v < 82 else 1)
PY
  say "installing build tools (setuptools>=77,<82, wheel, ninja, numpy)"
  pip_install "setuptools>=77,<82" wheel ninja numpy
fi

if ! "$py" -c "import torch" 2>/dev/null; then
  say "installing torch==2.13.0 (CPU wheel)"
  pip_install torch==2.13.0
fi

if ! "$py" -c "import mmcv.ops" 2>/dev/null; then
  say "building mmcv 2.1.0 with ops from source: 10 to 20 minutes on 2 cores" \
      "(pip caches the wheel, so later set-ups on this machine take seconds)"
  # mmcv's build imports torch, so it must see this venv's torch: no build isolation.
  pip_install "addict" "mmengine>=0.10,<0.11" "packaging" "Pillow" "pyyaml" "yapf" "opencv-python"
  MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" pip_install --no-build-isolation "mmcv==2.1.0"
  "$py" -c "import mmcv.ops" || { say "mmcv.ops still does not import after the build"; exit 1; }
fi

# Re-install this package only when its declared dependencies or this script changed.
stamp="$venv/.imbfocal-setup-stamp"
want="$(cat "$repo/pyproject.toml" "$repo/tools/setup_env.sh" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! "$py" -c "import imbfocal, mmdet" 2>/dev/null; then
  say "installing mmdet, mmengine and imbfocal (editable, with test extras)"
  pip_install --no-build-isolation -e "$repo[test]"
  echo "$want" > "$stamp"
fi

say "ready: $("$py" -c 'import torch, mmcv, mmdet, mmengine, imbfocal; print(f"torch {torch.__version__}, mmcv {mmcv.__version__}, mmdet {mmdet.__version__}, mmengine {mmengine.__version__}, imbfocal {imbfocal.__version__}")')"
