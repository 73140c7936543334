#!/usr/bin/env bash
# The prepared GPU check: golden parity on the GPU in float32 and bfloat16, `harness bench` at
# the paper shape (width 512, batch 768) in both dtypes with the GPU's peak memory, and 200
# steps of `--preset paper --task maze-hard` (generated 30x30 mazes) with their step time and
# memory, each phase under its own time limit (8 minutes in all), into one summary file.
#
#   here (no GPU):   scripts/build-cuda.sh && scripts/gpu-check.sh --prepare
#                    (target/gpu-check: the stripped CUDA binary, xz-compressed; a copy of
#                    ../shared/golden; the paper Maze-Hard data, built by the CPU binary)
#   there (one GPU, no network, no Rust), from the repository root, target/gpu-check carried:
#                    scripts/gpu-check.sh --out "$OUT"
#   CI (dry mode):   scripts/gpu-check.sh --dry --binary target/debug/harness --out DIR
#                    (the same phases and summary on this CPU at small shapes, so the script
#                    cannot rot)
#
# On the GPU machine the CUDA libraries come from the wheels of its Python (nvidia-cublas,
# nvidia-curand, nvidia-cuda-runtime, nvidia-cuda-nvrtc for CUDA 13) and libcuda from its driver.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=gpu
out=target/gpu-check/out
binary=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dry) mode=dry ;;
        --prepare) mode=prepare ;;
        --out) out="$2"; shift ;;
        --binary) binary="$2"; shift ;;
        *) echo "gpu-check.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
inputs=target/gpu-check

# The paper Maze-Hard recipe; its first 200 steps (the recipe's schedule, no evaluation
# before step 2604), saved and stopped by --stop-after (exit 130).
maze_paper=(--preset paper --task maze-hard --model trm-att)
maze_short=(--stop-after 200 --set train.log_interval=20)

if [ "$mode" = prepare ]; then
    mkdir -p "$inputs"
    [ -f target/cuda/harness.xz ] || { echo "run scripts/build-cuda.sh first" >&2; exit 1; }
    cp target/cuda/harness.xz "$inputs/harness.xz"
    rm -rf "$inputs/golden" && cp -r ../shared/golden "$inputs/golden"
    cargo build --release -p harness
    # The data, by the CPU binary: a run of the same data section (its batch does not enter
    # the section's hash) builds it under $inputs/data and stops after one step.
    status=0
    target/release/harness train "${maze_paper[@]}" --data-root "$inputs/data" \
        --run "$inputs/prepare-run" --stop-after 1 --set train.global_batch_size=2 || status=$?
    rm -rf "$inputs/prepare-run"
    # 130: stopped after its one step, as asked.
    [ "$status" -eq 0 ] || [ "$status" -eq 130 ] || { echo "preparing the data failed (exit $status)" >&2; exit 1; }
    ls "$inputs"/data/maze-hard-*/manifest.json >/dev/null
    du -sh "$inputs"
    exit 0
fi

mkdir -p "$out"
summary="$out/gpu-check-summary.txt"
log="$out/gpu-check.log"
: >"$summary"
: >"$log"
say() { echo "$*" | tee -a "$summary"; }

if [ "$mode" = gpu ]; then
    harness=/tmp/gpu-check-harness
    xz -dc "$inputs/harness.xz" >"$harness"
    chmod +x "$harness"
    libs=$(python3 - <<'EOF' || true
import glob, os, site
dirs = set()
for root in site.getsitepackages() + [site.getusersitepackages()]:
    for lib in glob.glob(os.path.join(root, "nvidia", "**", "lib"), recursive=True):
        dirs.add(lib)
print(":".join(sorted(dirs)))
EOF
)
    [ -n "$libs" ] || say "no CUDA libraries found in the Python wheels: relying on the system's"
    export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    golden="$inputs/golden"
    data_root="$inputs/data"
    bench=(--hidden 512 --batch 768 --repeats 3)
    maze=("${maze_paper[@]}" "${maze_short[@]}")
    # parity f32, parity bf16, bench f32, bench bf16, maze: 480 s, 8 minutes.
    limits=(60 60 90 90 180)
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu: /' | tee -a "$summary"
else
    harness="${binary:-target/release/harness}"
    golden=../shared/golden
    data_root="$out/data"
    bench=(--hidden 64 --batch 8 --repeats 1)
    # The paper recipe's code path (bf16: candle compositions, chunked attention) at a CPU
    # size: 6x6 mazes, width 64, batch 16, and a memory budget that forces micro-batches.
    maze=("${maze_paper[@]}" --set data.side=6 --set data.min-path=4 --set data.train-size=40
          --set data.val-size=8 --set data.test-size=16 --set arch.hidden_size=64
          --set arch.puzzle_emb_ndim=64
          --set arch.num_heads=2 --set train.global_batch_size=16 --set eval.batch_size=16
          --device-memory 0.05GB --stop-after 6 --set train.log_interval=2)
    limits=(300 300 300 300 300)
    say "dry mode on the CPU: small shapes, the same phases"
fi
say "binary: $("$harness" --version)"

# The GPU's used memory, sampled every 100 ms while a phase runs (nothing on the CPU).
memory_watch() {
    if command -v nvidia-smi >/dev/null && [ "$mode" = gpu ]; then
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$out/memory-$1.txt" &
        echo $!
    else
        echo ""
    fi
}
memory_peak() {
    local pid="$1" name="$2"
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        echo "peak GPU memory $(sort -n "$out/memory-$name.txt" | tail -1) MiB"
    else
        echo "peak GPU memory: n/a on the CPU"
    fi
}

# phase NAME LIMIT COMMAND...: runs it under its limit, its output to the log and to
# $out/NAME.txt, and one summary line with the exit status, seconds and peak memory.
phase() {
    local name="$1" limit="$2"
    shift 2
    local watch start status
    watch=$(memory_watch "$name")
    start=$(date +%s%N)
    set +e
    # SIGTERM first (train saves and stops), SIGKILL 15 s later if it has not.
    timeout -k 15 "$limit" "$@" >"$out/$name.txt" 2>&1
    status=$?
    set -e
    local seconds=$((($(date +%s%N) - start) / 1000000000))
    cat "$out/$name.txt" >>"$log"
    local verdict=ok
    case "$status" in
        0) ;;
        130) verdict="ok (stopped as asked)" ;;
        *) verdict="FAILED (exit $status)"; failed=$((failed + 1)) ;;
    esac
    [ "$status" -eq 124 ] && verdict="STOPPED at its ${limit} s limit"
    say "$name: $verdict in ${seconds} s; $(memory_peak "$watch" "$name")"
    return 0
}

failed=0
parity_lines() {
    grep -E "tensors, [0-9]+ out of tolerance" "$out/$1.txt" | sed 's/^/  /' | tee -a "$summary" || true
}

goldens=(--golden "$golden/trm-att" --golden "$golden/trm-mlp" --golden "$golden/hrm")
phase parity-f32 "${limits[0]}" "$harness" parity "${goldens[@]}"
parity_lines parity-f32
phase parity-bf16 "${limits[1]}" "$harness" parity --forward-dtype bfloat16 "${goldens[@]}"
parity_lines parity-bf16
for i in 0 1; do
    dtype=$([ "$i" -eq 0 ] && echo float32 || echo bfloat16)
    phase "bench-$dtype" "${limits[$((2 + i))]}" "$harness" bench "${bench[@]}" --forward-dtype "$dtype" \
        --models trm-att,hrm --json "$out/bench-$dtype.json"
    grep -E "^(model|trm|hrm)" "$out/bench-$dtype.txt" | sed 's/^/  /' | tee -a "$summary" || true
done
# The run's checkpoint (about 2 GB at the paper shape) stays out of $out.
run_dir=/tmp/gpu-check-maze-run
rm -rf "$run_dir"
phase maze-hard-200 "${limits[4]}" "$harness" train "${maze[@]}" --data-root "$data_root" --run "$run_dir"
grep -E "micro-batches|steps in" "$out/maze-hard-200.txt" | sed 's/^/  /' | tee -a "$summary" || true
if [ -f "$run_dir/metrics.csv" ]; then
    cp "$run_dir/metrics.csv" "$out/maze-hard-metrics.csv"
    # step,epoch,lr,...,wall_seconds: the seconds per step between the first and last log lines.
    awk -F, 'NR == 2 { s0 = $1; t0 = $NF } NR > 2 { s = $1; t = $NF }
             END { if (s > s0) printf "  logged steps %d to %d: %.3f s per step\n", s0, s, (t - t0) / (s - s0);
                   else print "  fewer than two log lines: no step time" }' \
        "$run_dir/metrics.csv" | tee -a "$summary"
fi
say "summary: $summary ($failed phase(s) failed)"
[ "$failed" -eq 0 ]
