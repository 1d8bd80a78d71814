#!/usr/bin/env bash
# The GPU evidence run (docs/gpu-evidence.md): bash benchmarks/gpu_check.sh OUT_DIR
# Needs an NVIDIA GPU; no network. Fails (non-zero, one line per failed check) rather than skipping.
set -uo pipefail
out="${1:?usage: bash benchmarks/gpu_check.sh OUT_DIR}"
cd "$(dirname "$0")/.."
python3 -c "import profkit" 2>/dev/null || python3 -m pip install --quiet --no-deps --no-build-isolation -e . || exit 1
nvidia-smi -L || { echo "FAIL gpu_present: nvidia-smi found no GPU"; exit 1; }
exec timeout 470 python3 benchmarks/gpu_check.py "$out"
