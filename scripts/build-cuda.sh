#!/usr/bin/env bash
# Builds the linked, stripped CUDA binary of `harness` on a machine without a GPU, from
# registry packages alone: the CUDA 13.0 toolkit and libraries as Python wheels
# (scripts/cuda-toolkit.txt, scripts/cuda-link.txt) and a link-time stub of the driver.
#
# candle turns on cudarc's `dynamic-linking`, so the link wants libcuda, which is the driver
# and comes in no wheel. The stub defines every driver function cudarc declares (an empty
# stub would be dropped by --as-needed and leave them unresolved at load time) and carries
# the soname libcuda.so.1, so that on the GPU machine the real driver satisfies them.
#
# Output: target/cuda/harness (stripped) and target/cuda/harness.xz; run it there with
# LD_LIBRARY_PATH pointing at the CUDA 13 libraries of that machine's Python wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cuda-env.sh
"$cuda_venv/bin/pip" install --quiet -r scripts/cuda-link.txt

link=target/cuda/link
mkdir -p "$link"
# Unversioned names for `-l`: the wheels ship only libX.so.N.
for lib in "$cuda_root"/lib/lib*.so.*; do
  base=$(basename "$lib")
  ln -sf "$lib" "$link/${base%%.so.*}.so"
done

registry=$(dirname "$(cargo metadata --format-version 1 --manifest-path harness/Cargo.toml \
  --features cuda | python3 -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "cudarc"))')")
python3 - "$registry/src/driver/sys/mod.rs" "$link/cuda_stub.c" <<'PY'
import re, sys
source = open(sys.argv[1]).read()
names = sorted(set(re.findall(r'extern "C" \{\s*fn (cu[A-Za-z0-9_]+)\(', source)))
with open(sys.argv[2], "w") as out:
    out.write("/* Link-time stand-in for libcuda.so.1: never loaded, the driver replaces it. */\n")
    out.writelines(f"void {n}(void) {{}}\n" for n in names)
print(f"libcuda stub: {len(names)} driver functions")
PY
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$link/libcuda.so" "$link/cuda_stub.c"

export RUSTFLAGS="${RUSTFLAGS:-} -L native=$(pwd)/$link"
# Its own target folder: the flags differ, and the CPU build in target/release stays as it is.
cargo build --release -p harness --features cuda --target-dir target/cuda/build
strip -o target/cuda/harness target/cuda/build/release/harness
xz -T0 -9 -k -f target/cuda/harness
ls -l target/cuda/harness target/cuda/harness.xz
ldd target/cuda/harness | grep -E "libcuda|cublas|curand|nvrtc|cusparse" || true
