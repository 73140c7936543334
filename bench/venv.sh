# Sourced by the bench scripts: target/bench-venv with PyTorch and the official code's other
# imports from the package registry (bench/requirements.txt), made on first use.
venv=target/bench-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch, einops, pydantic, argdantic, safetensors.torch" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r bench/requirements.txt
fi
