"""How far the official code itself moves from its float32 golden tensors when it runs the
same first training call in bfloat16, as the official recipes do. The harness's bf16 parity
test (`models/tests/golden.rs`) sets its tolerance from these figures.

  target/bench-venv/bin/python bench/bf16_yardstick.py --official ../shared/reference/trm-official \
      --golden ../shared/golden

Prints, per golden folder, each tensor's largest absolute deviation relative to the f32
tensor's largest entry (the harness's `parity::compare` measure), largest first, for the
first training call (logits, halting logits, states, gradients). Later calls are not
comparable: run free in bf16, a slot may halt at another step than in the f32 trace and the
carries part (the harness's parity run restarts each call from the f32 carry instead).
"""

import argparse
import json
import os
import sys


def first_call(args, name):
    import torch
    from safetensors.torch import load_file

    folder = os.path.join(args.golden, name)
    config = json.load(open(os.path.join(folder, "config.json")))
    cfg = {k: v for k, v in config["model_config"].items() if v is not None}
    cfg["forward_dtype"] = "bfloat16"
    cfg["causal"] = False
    from models.losses import ACTLossHead

    if name == "hrm":
        from models.recursive_reasoning.hrm import HierarchicalReasoningModel_ACTV1 as Model
    else:
        from models.recursive_reasoning.trm import TinyRecursiveReasoningModel_ACTV1 as Model
    model = ACTLossHead(Model(cfg), loss_type="stablemax_cross_entropy")
    weights = load_file(os.path.join(folder, "weights.safetensors"))
    # The buffers the official constructor makes in bf16 (H_init, L_init) take the f32 values.
    model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in weights.items()})
    batch = {k: v for k, v in load_file(os.path.join(folder, "batch.safetensors")).items()}
    batch = {
        "inputs": batch["inputs"].to(torch.int32),
        "labels": batch["labels"].to(torch.int64),
        "puzzle_identifiers": batch["puzzle_identifiers"].to(torch.int32),
    }
    trace = load_file(os.path.join(folder, "trace.safetensors"))
    model.train()
    carry = model.initial_carry(batch)
    carry, loss, _, outputs, _ = model(carry=carry, batch=batch, return_keys=["logits", "q_halt_logits"])
    ((1 / batch["inputs"].shape[0]) * loss).backward()
    ours = {
        "call1.logits": outputs["logits"],
        "call1.q_halt_logits": outputs["q_halt_logits"],
        "call1.z_H": carry.inner_carry.z_H,
        "call1.z_L": carry.inner_carry.z_L,
    }
    for pname, p in model.named_parameters():
        if p.grad is not None:
            ours[f"grad.{pname}"] = p.grad
    rows = []
    for key, value in ours.items():
        if key not in trace:
            continue
        ref = trace[key].double()
        dev = (value.double() - ref).abs().max().item() / max(ref.abs().max().item(), 1e-30)
        rows.append((dev, key))
    return sorted(rows, reverse=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", required=True)
    ap.add_argument("--golden", required=True)
    args = ap.parse_args()
    sys.path.insert(0, os.path.abspath(args.official))
    for name in ["trm-att", "trm-mlp", "hrm"]:
        rows = first_call(args, name)
        print(f"{name}: " + ", ".join(f"{k} {d:.3f}" for d, k in rows[:8]))


if __name__ == "__main__":
    main()
