#!/usr/bin/env bash
# Makes the seed corpora of the fuzz targets from data the harness itself generates (and,
# when ../shared is there, a few real ARC task files), then runs every target for
# FUZZ_SECONDS (default 600) each:
#   fuzz/seed.sh            # seeds, then fuzz all five targets
#   FUZZ_SECONDS=60 fuzz/seed.sh
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain (`cargo +nightly`).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-600}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release -p harness
h=target/release/harness
$h data build --task maze-hard --side 6 --min-path 4 --train-size 5 --test-size 3 --out "$work/maze" >/dev/null
$h data build --task sudoku-extreme --train-size 5 --test-size 3 --num-aug 1 --out "$work/sudoku" >/dev/null
for t in npy dataset_dir puzzle_csv arc_task preset; do mkdir -p fuzz/corpus/$t; done
for d in maze sudoku; do
  for f in "$work/$d"/train/*.npy; do cp "$f" "fuzz/corpus/npy/$d-$(basename "$f")"; done
  cp "$work/$d/puzzles_train.csv" "fuzz/corpus/puzzle_csv/$d.csv"
  # dataset_dir: the eight files of a split, separated by @@FILE@@ (see the target).
  {
    first=1
    for f in train/dataset.json train/all__inputs.npy train/all__labels.npy train/all__puzzle_indices.npy \
             train/all__group_indices.npy train/all__puzzle_identifiers.npy identifiers.json manifest.json; do
      [ $first = 1 ] || printf '@@FILE@@'
      cat "$work/$d/$f"
      first=0
    done
  } > "fuzz/corpus/dataset_dir/$d"
done
if [ -d ../shared/data/arc-agi-1/training ]; then
  ls ../shared/data/arc-agi-1/training | head -20 | while read -r f; do cp "../shared/data/arc-agi-1/training/$f" fuzz/corpus/arc_task/; done
fi
# preset: a byte choosing task and model, the TOML, then NUL-separated --set overrides.
for p in paper cpu smoke; do
  { printf '\x00'; cat harness/presets/$p.toml; } > fuzz/corpus/preset/$p
  { printf '\x21'; cat harness/presets/$p.toml; printf '\0train.steps=5\0arch.hidden_size=32'; } > fuzz/corpus/preset/$p-set
done
for t in npy dataset_dir puzzle_csv arc_task preset; do
  cargo +nightly fuzz run -O $t -- -max_total_time="$seconds" -rss_limit_mb=4096 -max_len=65536
done
