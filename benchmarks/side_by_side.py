#!/usr/bin/env python3
"""Measure alexnet-split against PyTorch on the same cores, in one sitting.

For each case below, runs our `bench` and benchmarks/pytorch_reference.py alternately,
--rounds times each, and prints the median img/s of each side and their ratio. Alternating
rounds share whatever else the (shared, noisy) machine is doing at the time.

    swift build -c release
    pip install 'torch==2.13.0+cpu'          # see benchmarks/pytorch_reference.py
    python3 benchmarks/side_by_side.py --rounds 3 [--only paper] [--conv-algorithm auto] [--avx2]

--avx2 holds both sides to AVX2 on a machine that has AVX-512, to see what users of older servers
see: OpenBLAS's Haswell kernels for ours (OPENBLAS_CORETYPE=Haswell), and for PyTorch oneDNN's
AVX2 code (ONEDNN_MAX_CPU_ISA=AVX2) and ATen's AVX2 kernels (ATEN_CPU_CAPABILITY=avx2).

Ours runs under `mpirun -np 2` with one OpenBLAS thread per rank for the split model, and as
one process with 2 OpenBLAS threads for one-tower models; PyTorch runs with 2 threads. Like
for like: a split row is set against PyTorch's split model (grouped convolutions, groups=2),
an unsplit row against PyTorch's unsplit one. Ours uses --conv-algorithm (auto by default:
each convolution pass on the fastest of GEMM and Winograd, timed at start-up).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, ".build", "release", "alexnet-split")
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-x", "OPENBLAS_NUM_THREADS=1", "-np", "2"]
if "OPENBLAS_CORETYPE" in os.environ:  # e.g. OPENBLAS_CORETYPE=SKYLAKEX python3 benchmarks/side_by_side.py
    MPIRUN[1:1] = ["-x", "OPENBLAS_CORETYPE"]

# (name, our command's arguments, ours under mpirun?, pytorch preset/model, inference?, steps)
CASES = [
    ("paper split train", ["--preset", "paper", "--model", "split"], True, ("paper", "split"), False, 4),
    ("d2l split train", ["--preset", "d2l", "--model", "split"], True, ("d2l", "split"), False, 4),
    ("d2l unsplit train (1 process, 2 threads)", ["--preset", "d2l", "--model", "unsplit", "--one-process"], False, ("d2l", "unsplit"), False, 4),
    ("small split train", ["--preset", "small", "--model", "split"], True, ("small", "split"), False, 30),
    ("paper split inference", ["--preset", "paper", "--model", "split"], True, ("paper", "split"), True, 4),
    ("d2l unsplit inference (1 process, 2 threads)", ["--preset", "d2l", "--model", "unsplit", "--one-process"], False, ("d2l", "unsplit"), True, 4),
]


def run_json(command):
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def ours(arguments, mpi, inference, steps, batch, algorithm):
    command = [BINARY, "bench", *arguments, "--batch-size", str(batch), "--steps", str(steps), "--warmup", "1", "--json",
               "--conv-algorithm", algorithm]
    if inference:
        command.append("--inference")
    report = run_json(MPIRUN + command if mpi else command)
    return report["images_per_second"], report


def pytorch(preset, model, inference, steps, batch):
    command = [sys.executable, os.path.join(ROOT, "benchmarks", "pytorch_reference.py"), "--preset", preset, "--model", model,
               "--batch-size", str(batch), "--steps", str(steps), "--warmup", "1", "--threads", "2", "--json"]
    if inference:
        command.append("--inference")
    report = run_json(command)
    return report["inference" if inference else "train"]["img_per_s_median"], report


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--only", default="", help="run only the cases whose name contains this")
    parser.add_argument("--conv-algorithm", default="auto", choices=["auto", "gemm", "winograd", "winograd-4x4"])
    parser.add_argument("--avx2", action="store_true", help="hold both sides to AVX2 (see above)")
    args = parser.parse_args()
    if args.avx2:
        os.environ.update(OPENBLAS_CORETYPE="Haswell", ONEDNN_MAX_CPU_ISA="AVX2", ATEN_CPU_CAPABILITY="avx2")
        if "OPENBLAS_CORETYPE" not in MPIRUN:
            MPIRUN[1:1] = ["-x", "OPENBLAS_CORETYPE"]
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, "
          f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}, --conv-algorithm {args.conv_algorithm}")
    print("CPU:", cpu_summary(), flush=True)
    print(f"| case | alexnet-split img/s | PyTorch img/s | ratio |")
    print(f"|---|---|---|---|")
    report = None
    for name, arguments, mpi, (preset, model), inference, steps in CASES:
        if args.only not in name:
            continue
        a, b = [], []
        for _ in range(args.rounds):
            rate, report = ours(arguments, mpi, inference, steps, args.batch_size, args.conv_algorithm)
            a.append(rate)
            b.append(pytorch(preset, model, inference, steps, args.batch_size)[0])
        ma, mb = statistics.median(a), statistics.median(b)
        spread = lambda xs: f"{min(xs):.1f}-{max(xs):.1f}"
        print(f"| {name} | {ma:.1f} ({spread(a)}) | {mb:.1f} ({spread(b)}) | {ma / mb:.2f}x |", flush=True)
    if report is not None:
        print(f"OpenBLAS kernel: {report['openblas_core']}")


def cpu_summary():
    """The CPU's model name and its widest vector extension, from /proc/cpuinfo."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return "unknown"
    model = next((l.split(":", 1)[1].strip() for l in text.splitlines() if l.startswith("model name")), "unknown")
    flags = next((l.split(":", 1)[1].split() for l in text.splitlines() if l.startswith("flags")), [])
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{model}, {vector}, {os.cpu_count()} logical CPUs"


if __name__ == "__main__":
    main()
