#!/usr/bin/env bash
# Interoperability: the official TRM data loader (`puzzle_dataset.PuzzleDataset`, imported
# from a checkout of SamsungSAILMontreal/TinyRecursiveModels, never copied here) reads
# dataset directories the harness wrote, train and test splits, and yields batches:
#   bench/official-loader.sh OFFICIAL_CHECKOUT DATASET_DIR...
set -euo pipefail
cd "$(dirname "$0")/.."
official=${1:?usage: bench/official-loader.sh OFFICIAL_CHECKOUT DATASET_DIR...}
shift
. bench/venv.sh
exec "$venv/bin/python" bench/official_loader.py --official "$official" "$@"
