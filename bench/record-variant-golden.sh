#!/usr/bin/env bash
# Golden tensors of the official ablation variants (bench/record_variant_golden.py), from a
# checkout of SamsungSAILMontreal/TinyRecursiveModels (imported from its path, never copied):
#   bench/record-variant-golden.sh OFFICIAL_CHECKOUT OUT_DIR [--variant NAME]...
set -euo pipefail
cd "$(dirname "$0")/.."
official=${1:?usage: bench/record-variant-golden.sh OFFICIAL_CHECKOUT OUT_DIR [--variant NAME]...}
out=${2:?usage: bench/record-variant-golden.sh OFFICIAL_CHECKOUT OUT_DIR [--variant NAME]...}
shift 2
. bench/venv.sh
exec "$venv/bin/python" bench/record_variant_golden.py --official "$official" --out "$out" "$@"
