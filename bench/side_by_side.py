#!/usr/bin/env python3
"""Times the official PyTorch TRM/HRM code and `harness bench` at the same shapes, in one run
on one machine, and prints (and writes) one table of ratios with both GEMM rates.

Used only for benchmarking; the project never needs Python. `bench/side-by-side.sh` makes the
virtual environment and builds the harness, then runs this script.

The official code is imported, unchanged, from a checkout of
SamsungSAILMontreal/TinyRecursiveModels given with --official (never copied into this
project). Its training step is `pretrain.train_batch` on the CPU: the ACT model with its loss
head, backward of loss / batch, AdamATan2 on the weights and the official sign-SGD on the
puzzle embedding. The `adam-atan2` package is CUDA-only, so AdamATan2 is the same update in a
few lines of torch (`AdamAtan2` below). The evaluation step is one supervision step under
`torch.inference_mode()`, loss head included, as `pretrain.evaluate` calls it.

Every (shape, model, implementation) runs in a fresh process so that its peak resident memory
is its own.
"""

import argparse
import csv
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time

SHAPES = {
    # name: (harness bench arguments, label, timed repetitions, rounds)
    "cpu": (["--preset", "cpu", "--task", "maze-hard"], "cpu preset (5x5 maze, width 64)", 20, 5),
    "d128": (["--hidden", "128"], "Sudoku, width 128", 5, 2),
    "d512": (["--hidden", "512"], "Sudoku, width 512", 2, 1),
}
# The real training loop is timed at the preset shape (`harness train`, steps without evaluation).
LOOP_STEPS = 60


def cpu_model():
    """The CPU's model name with its family, model and widest vector unit: a virtual machine's
    name can be just "AMD EPYC" for CPUs of different generations and instruction sets."""
    fields = {}
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or "unknown"
    flags = fields.get("flags", "").split()
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    name = fields.get("model name", platform.processor() or "unknown")
    return f"{name} (CPU family {fields.get('cpu family', '?')}, model {fields.get('model', '?')}, {isa})"


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --- the official code -------------------------------------------------------------------


def torch_gemm_rate(torch, n=2048, seconds=2.0):
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def adam_atan2_class(torch):
    class AdamAtan2(torch.optim.Optimizer):
        """The update of the official `adam_atan2` CUDA kernel: decoupled decay, no epsilon,
        p -= lr * atan2(m_hat, sqrt(v_hat))."""

        def __init__(self, params, lr, weight_decay, betas):
            super().__init__(params, dict(lr=lr, weight_decay=weight_decay, betas=betas))

        @torch.no_grad()
        def step(self):
            for group in self.param_groups:
                b1, b2 = group["betas"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if not state:
                        state["step"] = 0
                        state["m"] = torch.zeros_like(p)
                        state["v"] = torch.zeros_like(p)
                    state["step"] += 1
                    t = state["step"]
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    state["m"].lerp_(p.grad, 1 - b1)
                    state["v"].lerp_(p.grad.square(), 1 - b2)
                    m_hat = state["m"] / (1 - b1**t)
                    v_hat = state["v"] / (1 - b2**t)
                    p.sub_(group["lr"] * torch.atan2(m_hat, v_hat.sqrt()))

    return AdamAtan2


def official_case(args, row):
    """Times the official model at the architecture `row["model_config"]` (harness names,
    which are the official ones)."""
    sys.path.insert(0, os.path.abspath(args.official))
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from models.losses import ACTLossHead
    from models.sparse_embedding import CastedSparseEmbeddingSignSGD_Distributed

    cfg = {k: v for k, v in row["model_config"].items() if v is not None}
    cfg["forward_dtype"] = "float32"
    cfg["causal"] = False
    if row["model"] == "hrm":
        from models.recursive_reasoning.hrm import HierarchicalReasoningModel_ACTV1 as Model
    else:
        from models.recursive_reasoning.trm import TinyRecursiveReasoningModel_ACTV1 as Model
    model = ACTLossHead(Model(cfg), loss_type="stablemax_cross_entropy")
    if args.compile:
        model = torch.compile(model)
    b, s, v = cfg["batch_size"], cfg["seq_len"], cfg["vocab_size"]
    g = torch.Generator().manual_seed(0)
    batch = {
        "inputs": torch.randint(1, v, (b, s), generator=g, dtype=torch.int32),
        "labels": torch.randint(1, v, (b, s), generator=g, dtype=torch.int64),
        "puzzle_identifiers": torch.zeros(b, dtype=torch.int32),
    }
    inner = model._orig_mod if args.compile else model
    adam = adam_atan2_class(torch)(inner.parameters(), lr=1e-4, weight_decay=1.0, betas=(0.9, 0.95))
    sign = CastedSparseEmbeddingSignSGD_Distributed(
        inner.model.inner.puzzle_emb.buffers(), world_size=1, lr=1e-4, weight_decay=1.0
    )
    carry = inner.initial_carry(batch)

    def train_step():
        nonlocal carry
        carry, loss, _, _, _ = model(carry=carry, batch=batch, return_keys=[])
        ((1 / b) * loss).backward()
        for opt in (adam, sign):
            opt.step()
            opt.zero_grad()

    def eval_step():
        with torch.inference_mode():
            model(carry=inner.initial_carry(batch), batch=batch, return_keys=["preds"])

    model.train()
    train = seconds_per(train_step, args.repeats)
    model.eval()
    evaluation = seconds_per(eval_step, args.repeats)
    return dict(train_seconds=train, eval_seconds=evaluation, peak_rss_mb=peak_rss_mb(), gemm_2048_gflops=torch_gemm_rate(torch))


def seconds_per(step, repeats):
    """The median of `repeats` timings after a warm-up (and, compiled, the compilation), as
    `harness bench` reports."""
    step()
    times = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


# --- the harness -------------------------------------------------------------------------


def harness_case(args, shape, model):
    out = os.path.join(args.work, f"harness-{shape}-{model}.json")
    cmd = [args.harness, "bench", *SHAPES[shape][0], "--models", model, "--repeats", str(repeats(args, shape)), "--json", out]
    subprocess.run(cmd, check=True, env=harness_env(args), cwd=args.work, stdout=subprocess.DEVNULL)
    return json.load(open(out))[0]


def harness_env(args):
    # The harness's own thread choices (batch shards, candle's element-wise ops on the calling
    # thread) follow from the thread count; nothing else is set for it.
    return dict(os.environ, RAYON_NUM_THREADS=str(args.threads))


def harness_loop(args, model):
    """Seconds per step of the real training loop (`harness train` at the cpu preset, data
    loading, logging and the carry included): the median gap between its logged steps, before
    any evaluation."""
    run = os.path.join(args.work, f"loop-{model}")
    subprocess.run(["rm", "-rf", run], check=True)
    cmd = [args.harness, "train", "--model", model, "--task", "maze-hard", "--run", run,
           "--set", f"train.steps={LOOP_STEPS}", "--set", "train.log_interval=1",
           "--set", f"train.eval_interval={LOOP_STEPS * 10}"]
    subprocess.run(cmd, check=True, env=harness_env(args), cwd=args.work, stdout=subprocess.DEVNULL)
    with open(os.path.join(run, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    walls = [float(r["wall_seconds"]) for r in rows]
    gaps = [b - a for a, b in zip(walls[5:], walls[6:])]
    return sorted(gaps)[len(gaps) // 2]


def repeats(args, shape):
    return args.repeats or SHAPES[shape][2]


def median(values):
    values = sorted(values)
    n = len(values)
    return (values[n // 2] + values[(n - 1) // 2]) / 2


def merged(rounds):
    """One row of per-round timings: each time the median over rounds, the rest from round 0."""
    row = dict(rounds[0])
    for key in ("train_seconds", "eval_seconds", "gemm_2048_gflops", "gemm_gflops", "peak_rss_mb"):
        if key in row:
            row[key] = median([r[key] for r in rounds])
    return row


def in_subprocess(args, shape, case):
    """Runs one official case in a fresh interpreter; returns its JSON line."""
    cmd = [sys.executable, __file__, "--case", json.dumps(case), "--official", args.official,
           "--threads", str(args.threads), "--repeats", str(repeats(args, shape))]
    if case.get("compile"):
        cmd.append("--compile")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(args, shape, model):
    """Ours and the official code alternated for the shape's rounds (the machine's speed drifts
    between minutes on a shared host); each ratio is the median of the rounds' ratios."""
    ours, eager, compiled = [], [], []
    for i in range(args.rounds or SHAPES[shape][3]):
        ours.append(harness_case(args, shape, model))
        eager.append(in_subprocess(args, shape, dict(ours[-1])))
        if shape == "d512" and not args.no_compile:
            compiled.append(in_subprocess(args, shape, dict(ours[-1], compile=True)))
        print(f"{shape} {model} round {i}: ours {ours[-1]['train_seconds']:.3f}/{ours[-1]['eval_seconds']:.3f} s, "
              f"PyTorch {eager[-1]['train_seconds']:.3f}/{eager[-1]['eval_seconds']:.3f} s", file=sys.stderr)
    row = dict(shape=shape, model=model, ours=merged(ours), eager=merged(eager), rounds=len(ours))
    ratios = lambda key, theirs: median([o[key] / t[key] for o, t in zip(ours, theirs)])
    row["ratio"] = {"eager": {k: ratios(k, eager) for k in ("train_seconds", "eval_seconds")}}
    if compiled:
        row["compiled"] = merged(compiled)
        row["ratio"]["compiled"] = {k: ratios(k, compiled) for k in ("train_seconds", "eval_seconds")}
    if shape == "cpu" and not args.no_loop:
        row["ours_loop_seconds"] = harness_loop(args, model)
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--official", required=True, help="checkout of the official TRM repository")
    p.add_argument("--harness", default="target/release/harness")
    p.add_argument("--shapes", default="cpu,d128,d512")
    p.add_argument("--models", default="trm-att,hrm")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--repeats", type=int, default=0, help="timed repetitions (default: per shape)")
    p.add_argument("--compile", action="store_true", help="(with --case) torch.compile the model")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile row at width 512")
    p.add_argument("--rounds", type=int, default=0, help="alternations of ours and theirs (default: per shape)")
    p.add_argument("--no-loop", action="store_true", help="skip timing the real training loop at the cpu shape")
    p.add_argument("--work", default="target/side-by-side")
    p.add_argument("--out", default="results/bench-side-by-side.md")
    p.add_argument("--case", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.case:
        print(json.dumps(official_case(args, json.loads(args.case))))
        return

    args.harness = os.path.abspath(args.harness)
    args.work = os.path.abspath(args.work)
    os.makedirs(args.work, exist_ok=True)
    rows = []
    for shape in args.shapes.split(","):
        for model in args.models.split(","):
            rows.append(measure(args, shape, model))
    text = render(rows, args)
    print(text)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(dict(cpu=cpu_model(), threads=args.threads, rows=rows), f, indent=1)


def render(rows, args):
    import torch

    compiled_models = [r["model"] for r in rows if "compiled" in r]
    compiled = f" (and `torch.compile` for {', '.join(compiled_models)} at width 512)" if compiled_models else ""

    lines = [
        "# Training and evaluation step: the harness against the official PyTorch code",
        "",
        f"One run of `bench/side-by-side.sh --shapes {args.shapes}` on {cpu_model()}, {args.threads} threads, f32,"
        f" PyTorch {torch.__version__} eager{compiled}, `harness bench` at the same architecture and batch.",
        "Times are medians of repeated steps after a warm-up, ours and PyTorch alternated for each row's rounds;",
        "each ratio is the median of the rounds' ratios. Ratios below 1 mean the harness is faster. \"ours, loop\":",
        f"the real training loop (`harness train` at the cpu preset, {LOOP_STEPS} steps, the median gap between logged",
        "steps, data, logging and the carry included), beside `harness bench`'s step. Batch shards: the pieces of the",
        "batch our CPU step runs at once, one per thread (`models::trainer::cpu_batch_shards`).",
        "GEMM rates: f32 2048^3 in each library (ours through the models' linear kernel and its GEMM, `models::kernels::gemm`), and ours at",
        "the models' projection shape (tokens x D x 3D). \"of best GEMM\": the step's matmul FLOPs per second over the",
        "faster of the two 2048^3 rates measured in that row's processes.",
        "",
        "| shape | model | rounds | batch shards | PyTorch train s | ours train s | ours, loop s | ours / PyTorch "
        "| PyTorch eval s | ours eval s | ours / PyTorch | train GFLOP/s PyTorch / ours (of best GEMM) | peak RSS MB PyTorch / ours |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        o = r["ours"]
        loop = f"{r['ours_loop_seconds']:.3f}" if "ours_loop_seconds" in r else "-"
        for key, suffix in [("eager", ""), ("compiled", " (`torch.compile`)")]:
            if key not in r:
                continue
            e, ratio = r[key], r["ratio"][key]
            best = max(e["gemm_2048_gflops"], o["gemm_2048_gflops"])
            theirs, ours = o["train_gflop"] / e["train_seconds"], o["train_gflop"] / o["train_seconds"]
            lines.append(
                f"| {SHAPES[r['shape']][1]} | {r['model']}{suffix} | {r['rounds']} | {o.get('batch_shards', 1)} "
                f"| {e['train_seconds']:.3f} | {o['train_seconds']:.3f} | {loop} | {ratio['train_seconds']:.2f} "
                f"| {e['eval_seconds']:.3f} | {o['eval_seconds']:.3f} | {ratio['eval_seconds']:.2f} "
                f"| {theirs:.0f} / {ours:.0f} ({ours / best:.2f}) | {e['peak_rss_mb']:.0f} / {o['peak_rss_mb']:.0f} |"
            )
    g_torch = [r["eager"]["gemm_2048_gflops"] for r in rows]
    g_ours = [r["ours"]["gemm_2048_gflops"] for r in rows]
    g_proj = [f"{r['shape']} {r['model']} {r['ours']['gemm_gflops']:.0f}" for r in rows]
    lines += [
        "",
        f"f32 GEMM 2048^3 across the rows' processes: PyTorch {min(g_torch):.0f}-{max(g_torch):.0f} GFLOP/s, ours {min(g_ours):.0f}-{max(g_ours):.0f} GFLOP/s;"
        f" ours at each row's projection shape: {', '.join(g_proj)} GFLOP/s.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
