# Sourced: puts the CUDA 13.0 toolkit from the package registry (scripts/cuda-toolkit.txt, in
# target/cuda-venv, made on first use) on PATH for a build with `--features cuda` on a
# machine without a GPU or a system CUDA. No GPU to ask, so the target is set: sm_90 (H100,
# H200); override CUDA_COMPUTE_CAP for another GPU.
cuda_venv="${HARNESS_CUDA_VENV:-target/cuda-venv}"
if [ -z "$(ls "$cuda_venv"/lib/python3*/site-packages/nvidia/cu13/bin/nvcc 2>/dev/null)" ]; then
  python3 -m venv "$cuda_venv"
  "$cuda_venv/bin/pip" install --quiet -r scripts/cuda-toolkit.txt
fi
cuda_root=$(cd "$(dirname "$(ls "$cuda_venv"/lib/python3*/site-packages/nvidia/cu13/bin/nvcc)")/.." && pwd)
export PATH="$cuda_root/bin:$PATH"
export CUDA_ROOT="$cuda_root" CUDA_PATH="$cuda_root" CUDA_HOME="$cuda_root"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
