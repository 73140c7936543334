#!/usr/bin/env bash
# The harness against the official PyTorch code, side by side in one run on this machine:
#   bench/side-by-side.sh OFFICIAL_CHECKOUT [side_by_side.py options...]
# OFFICIAL_CHECKOUT is a checkout of SamsungSAILMontreal/TinyRecursiveModels (it is imported
# from there, never copied here). Makes target/bench-venv (PyTorch from the package registry)
# on first use, builds the release harness, and writes results/bench-side-by-side.{md,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
official=${1:?usage: bench/side-by-side.sh OFFICIAL_CHECKOUT [options]}
shift
. bench/venv.sh
cargo build --release -p harness
exec "$venv/bin/python" bench/side_by_side.py --official "$official" "$@"
