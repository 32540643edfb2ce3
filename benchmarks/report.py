"""Turn one benchmark run (pytest-benchmark's ``--benchmark-json``) into the
performance report: markdown tables, scaling plots (PNG) and the verdict on
each target of the performance issue.

    python benchmarks/report.py bench.json                       # markdown to stdout
    python benchmarks/report.py bench.json --doc docs/performance.md \\
        --figures docs/figures/performance                       # rewrite the doc's tables

With ``--doc`` the text between ``<!-- report:begin -->`` and
``<!-- report:end -->`` is replaced (when the run holds the paper-size
kernels) and that between ``<!-- report-grid:begin -->`` and
``<!-- report-grid:end -->`` (when it holds the positive-control model's,
``test_grid_model.py``), and that between ``<!-- report-float32:begin -->``
and ``<!-- report-float32:end -->`` (when it holds float32 results,
``test_float32.py``); the rest of the page is kept. Every
number comes from the medians of the one run in the file; GFLOP/s use the
leading-order flop counts recorded with each result (docs/math.md section 5).
"""

import argparse
import json
import os
import re
import sys
from collections import namedtuple

import numpy as np

BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"
GRID_BEGIN, GRID_END = "<!-- report-grid:begin -->", "<!-- report-grid:end -->"
F32_BEGIN, F32_END = "<!-- report-float32:begin -->", "<!-- report-float32:end -->"
F32_TARGET = 1.7           # float32 at least this much faster (issue 19), gradient and GN product
BACKENDS = ("numpy", "numba", "c", "torch", "jax")
FAST = ("c", "numba")
PEERS = ("torch", "jax")
LABEL = {"numpy": "NumPy reference", "numba": "Numba", "c": "C", "torch": "PyTorch", "jax": "JAX"}
KERNEL_LABEL = {"forward": "forward", "forward_stream": "streaming forward", "gradient": "gradient",
                "gradient_sq": "gradient + per-trial squares", "gn_product": "Gauss-Newton product"}
AXES = {"N": 0, "M": 1, "T": 2}
# Largest fitted exponent of time against each axis that still counts as
# linear (M, T) or quadratic (N): small sizes are overhead-bound, so a few
# hundredths above the nominal power come from timing noise, not growth.
EXPONENT_LIMIT = {"N": 2.1, "M": 1.1, "T": 1.1}

Result = namedtuple("Result", "kernel backend threads size median iqr rounds gflop info")


def load(path):
    """The run's results and its metadata."""
    with open(path) as fh:
        run = json.load(fh)
    results = []
    for b in run["benchmarks"]:
        e = dict(b["extra_info"], fullname=b.get("fullname", ""), timer=b.get("options", {}).get("timer"))
        size = tuple(e.get(k) for k in ("n", "m", "t"))
        results.append(Result(e["kernel"], e["backend"], e.get("threads"), size, b["stats"]["median"],
                              b["stats"]["iqr"], b["stats"]["rounds"], e.get("gflop"), e))
    return results, run


class Results:
    """Look-ups by (kernel, backend, threads, size).

    ``all`` holds the paper model's float64 results, ``grid`` the
    positive-control model's (``extra_info["model"] == "grid"``), ``dtypes``
    the results of ``test_float32.py`` (both dtypes). The paper's size is the one
    ``test_kernels.py`` ran at (found from its ``gradient_sq`` results), so a
    smoke-test run reports the same way; None if the run has none.
    """

    def __init__(self, results):
        self.dtypes = [r for r in results if "test_float32.py" in r.info["fullname"]]
        rest = [r for r in results if r not in self.dtypes]
        self.all = [r for r in rest if r.info.get("model", "paper") == "paper"]
        self.grid = [r for r in rest if r.info.get("model", "paper") == "grid"]
        self.by_key = {(r.kernel, r.backend, r.threads, r.size): r for r in self.all}
        self.paper = next((r.size for r in self.all if r.kernel == "gradient_sq"), None)

    def get(self, kernel, backend, threads=2, size=None):
        return self.by_key.get((kernel, backend, threads, size or self.paper))

    def median(self, *key, **kw):
        r = self.get(*key, **kw)
        return None if r is None else r.median

    def matmul_rate(self, n, threads):
        """NumPy's (M x n)(n x n) GFLOP/s on ``threads`` threads."""
        r = next((r for r in self.all if r.kernel == "matmul" and r.size[0] == n
                  and r.threads == threads), None)
        return None if r is None else r.gflop / r.median

    def sweep(self, axis, kernel, backend):
        """(value, median) along one axis through the paper's size, 2 threads."""
        i = AXES[axis]
        points = [(r.size[i], r.median) for r in self.all
                  if r.kernel == kernel and r.backend == backend and r.threads == 2
                  and all(r.size[j] == self.paper[j] for j in range(3) if j != i)]
        return sorted(points)


def exponent(points):
    """Least-squares slope of log(time) against log(size)."""
    if len(points) < 2:
        return None
    x, y = np.log([p[0] for p in points]), np.log([p[1] for p in points])
    return float(np.polyfit(x, y, 1)[0])


def fmt_s(t):
    if t is None:
        return "-"
    return f"{t:.3g} s" if t >= 0.1 else f"{t * 1e3:.3g} ms"


def fmt(x, spec=".2f", none="-"):
    return none if x is None else format(x, spec)


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def size_text(size):
    return f"N = {size[0]}, M = {size[1]}, T = {size[2]}"


def run_section(run, res):
    """Where and how the numbers were measured."""
    every = res.all + res.grid or res.dtypes
    e = next((r.info for r in every if r.backend == "c"), every[0].info)
    mi = run["machine_info"]
    commit = run.get("commit_info", {})
    env = ", ".join(f"`{k}={e[k]}`" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS",
                                              "OMP_NUM_THREADS", "NUMBA_NUM_THREADS") if e.get(k))
    peers = sorted({f"{LABEL[r.backend]} {r.info.get('version')}" for r in every
                    if r.backend in PEERS and r.kernel == "forward" and r.threads == 2})
    xla = next((r.info.get("xla_flags") for r in res.all if r.backend == "jax"), None)
    lines = [
        f"- date: {run['datetime'][:16].replace('T', ' ')} UTC; commit `{commit.get('id', '?')[:10]}`"
        f"{' (with uncommitted changes)' if commit.get('dirty') else ''}",
        f"- CPU: {e.get('cpu')}, {mi.get('cpu', {}).get('count', '?')} logical CPUs; "
        f"Python {mi.get('python_version')}",
        f"- NumPy's BLAS as loaded: {'; '.join(e.get('numpy_blas') or ['unknown'])}",
        f"- environment: {env or 'no BLAS or threading variables set'}",
        f"- C core: OpenMP {'on' if e.get('openmp') else 'off'}, instruction set {e.get('isa')}",
        f"- peers: {', '.join(peers) if peers else 'not installed'}"
        + (f"; JAX with `XLA_FLAGS={xla}`" if xla else ""),
    ]
    return "\n".join(lines)


def paper_section(res):
    """Every kernel at the paper's size: seconds, GFLOP/s, share of matmul, speed-up."""
    rows = []
    for kernel in KERNEL_LABEL:
        for backend in BACKENDS:
            for threads in (1, 2):
                r = res.get(kernel, backend, threads)
                if r is None:
                    continue
                rate = r.gflop / r.median
                mm = res.matmul_rate(res.paper[0], threads)
                ref = res.median(kernel, "numpy", threads)
                rows.append([KERNEL_LABEL[kernel], LABEL[backend], threads, fmt_s(r.median),
                             fmt_s(r.iqr), r.rounds, fmt(rate, ".1f"),
                             fmt(None if mm is None else 100 * rate / mm, ".0f") + " %",
                             fmt(None if ref is None else ref / r.median, ".1f") + "x"])
    return md_table(["kernel", "backend", "threads", "median", "IQR", "rounds", "GFLOP/s",
                     "of matmul", "vs NumPy ref."], rows)


def matmul_section(res):
    rows = []
    for n, m in sorted({r.size[:2] for r in res.all if r.kernel == "matmul"}):
        rows.append([f"({m} x {n}) @ ({n} x {n})"] +
                    [fmt(res.matmul_rate(n, t), ".1f") for t in (1, 2)])
    text = md_table(["per-step product", "GFLOP/s, 1 thread", "GFLOP/s, 2 threads"], rows)
    copy = next((r for r in res.all if r.kernel == "copy"), None)
    if copy is not None:
        text += (f"\n\nMemory: one thread copies {copy.info['gbyte'] / 2:.2g} GB at "
                 f"{copy.info['gbyte'] / copy.median:.1f} GB/s (bytes read + written, as STREAM counts).")
    return text


def sweep_section(res):
    """Medians along each axis and the fitted exponent per backend and kernel."""
    parts = []
    for axis in AXES:
        values = sorted({v for k in ("gradient", "gn_product") for b in BACKENDS
                         for v, _ in res.sweep(axis, k, b)})
        if not values:
            continue
        header = ["kernel", "backend"] + [f"{axis} = {v}" for v in values] + ["exponent"]
        rows = []
        for kernel in ("gradient", "gn_product"):
            for backend in BACKENDS:
                pts = dict(res.sweep(axis, kernel, backend))
                if pts:
                    rows.append([KERNEL_LABEL[kernel], LABEL[backend]]
                                + [fmt_s(pts.get(v)) for v in values]
                                + [fmt(exponent(sorted(pts.items())), ".2f")])
        others = ", ".join(f"{a} = {res.paper[i]}" for a, i in AXES.items() if a != axis)
        parts.append(f"**{axis}** ({others}, 2 threads; median)\n\n" + md_table(header, rows))
    rate_rows = []
    for n in sorted({v for v, _ in res.sweep("N", "gradient", "c")}):
        row = [n, fmt(res.matmul_rate(n, 2), ".1f")]
        for kernel in ("gradient", "gn_product"):
            for backend in ("c", "numba", "numpy"):
                r = res.get(kernel, backend, 2, (n,) + res.paper[1:])
                row.append("-" if r is None else fmt(r.gflop / r.median, ".0f"))
        rate_rows.append(row)
    parts.append(f"**GFLOP/s against N** (M = {res.paper[1]}, T = {res.paper[2]}, 2 threads)\n\n" + md_table(
        ["N", "NumPy matmul", "gradient C", "gradient Numba", "gradient NumPy ref.",
         "GN C", "GN Numba", "GN NumPy ref."], rate_rows))
    return "\n\n".join(parts)


def describe(r):
    """What a pipeline result measured, in words."""
    n, m, t = r.size
    if r.kernel == "trajectories":
        return f"trajectory simulation, M = {m}, T = {t}"
    if r.kernel == "minibatch":
        if "counter" in r.info["fullname"]:
            return "minibatch: trajectories + a CounterNoise (no draws)"
        return f"minibatch: trajectories + noise ({m * t * n:,} normal draws)"
    dtype = "" if r.info.get("dtype", "float64") == "float64" else f", {r.info['dtype']}"
    if r.kernel == "hf_iteration":
        return f"one HF iteration, paper preset ({r.info.get('cg_iters')} CG iterations{dtype})"
    if r.kernel == "grid_training_step":
        return f"one Adam step, grid-cells preset, N = {n}, M = {m}, T = {t}{dtype}"
    return f"rate maps + grid/border/band scores, {n} units, {m * t:,} samples"


def pipeline_section(res):
    # Only the HF iteration runs on a backend; the rest is plain NumPy/SciPy or Numba code.
    on_backend = ("hf_iteration", "grid_training_step")
    rows = [[describe(r), LABEL[r.backend] if r.kernel in on_backend else r.backend,
             r.threads or "default", fmt_s(r.median), r.rounds]
            for r in res.all if r.kernel in ("trajectories", "minibatch", "ratemaps") + on_backend]
    return md_table(["what", "backend", "threads", "median", "rounds"], rows)


def ratio(a, b):
    return None if a is None or b is None else a / b


def targets(res):
    """[(target, measured, met)] for the issue's targets; met is None when not measured."""
    out = []
    c = {k: res.median(k, "c") for k in ("gradient", "gn_product")}
    for k in ("gradient", "gn_product"):
        speed = ratio(res.median(k, "numpy"), c[k])
        out.append((f"C {KERNEL_LABEL[k]} >= 3x the NumPy reference",
                    f"{fmt(speed, '.1f')}x ({fmt_s(c[k])} vs {fmt_s(res.median(k, 'numpy'))})",
                    None if speed is None else speed >= 3))
    for k in ("gradient", "gn_product"):
        r, mm = res.get(k, "c"), res.matmul_rate(res.paper[0], 2)
        share = None if r is None or mm is None else r.gflop / r.median / mm
        out.append((f"C {KERNEL_LABEL[k]} >= 50% of NumPy matmul GFLOP/s",
                    f"{fmt(None if share is None else 100 * share, '.0f')} % "
                    f"({fmt(None if r is None else r.gflop / r.median, '.1f')} of {fmt(mm, '.1f')} GFLOP/s)",
                    None if share is None else share >= 0.5))
    for k in ("forward", "gradient", "gn_product"):
        slow = ratio(res.median(k, "numba"), res.median(k, "c"))
        out.append((f"Numba {KERNEL_LABEL[k]} within 1.5x of C", f"{fmt(slow, '.2f')}x",
                    None if slow is None else slow <= 1.5))
    for b in FAST:
        for k in ("gradient", "gn_product"):
            sp = ratio(res.median(k, b, 1), res.median(k, b, 2))
            out.append((f"{LABEL[b]} {KERNEL_LABEL[k]}: 2 threads >= 1.7x of 1", f"{fmt(sp, '.2f')}x",
                        None if sp is None else sp >= 1.7))
    traj = next((r for r in res.all if r.kernel == "trajectories"), None)
    share = ratio(None if traj is None else traj.median, c["gradient"])
    traj_s = None if traj is None else traj.median
    out.append(("trajectory simulation < 5% of one gradient (C)",
                f"{fmt(None if share is None else 100 * share, '.1f')} % ({fmt_s(traj_s)})",
                None if share is None else share < 0.05))
    for axis, limit in EXPONENT_LIMIT.items():
        for k in ("gradient", "gn_product"):
            e = exponent(res.sweep(axis, k, "c"))
            power = "linear" if limit < 2 else "at most quadratic"
            out.append((f"C {KERNEL_LABEL[k]} {power} in {axis}", f"exponent {fmt(e, '.2f')}",
                        None if e is None else e <= limit))
    for k, need in (("gradient", 2.5), ("gn_product", 2.0)):
        peers = [(res.median(k, p), p) for p in PEERS if res.median(k, p) is not None]
        if not peers:
            out.append((f"C {KERNEL_LABEL[k]} >= {need}x the faster peer", "no peer installed", None))
            continue
        best, who = min(peers)
        sp = best / c[k]
        out.append((f"C {KERNEL_LABEL[k]} >= {need}x the faster peer",
                    f"{sp:.2f}x ({LABEL[who]} {fmt_s(best)})", sp >= need))
    return out


def targets_section(res):
    verdict = {True: "met", False: "**not met**", None: "not measured"}
    return md_table(["target (paper size, 2 threads, medians)", "measured", "verdict"],
                    [[t, m, verdict[ok]] for t, m, ok in targets(res)])


def label_ticks(ax, values):
    """Tick a log x axis at the measured sizes only."""
    from matplotlib.ticker import NullFormatter
    ax.set_xticks(values, [str(v) for v in values])
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot(res, folder):
    """Write scaling.png (time against N, M, T) and gflops.png (rate against N); return their names."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(folder, exist_ok=True)
    colours = {"numpy": "tab:gray", "numba": "tab:orange", "c": "tab:blue"}
    style = {"gradient": "-o", "gn_product": "--s"}
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    for ax, (axis, power) in zip(axes, (("N", 2), ("M", 1), ("T", 1))):
        for backend, colour in colours.items():
            for kernel, st in style.items():
                pts = res.sweep(axis, kernel, backend)
                if pts:
                    x, y = zip(*pts)
                    ax.loglog(x, y, st, color=colour, label=f"{LABEL[backend]}, {KERNEL_LABEL[kernel]}")
        pts = res.sweep(axis, "gradient", "c")
        if pts:
            x = np.array([p[0] for p in pts], float)
            ref = pts[-1][1] * (x / x[-1]) ** power
            ax.loglog(x, ref, ":", color="black", label=f"slope {power}")
        label_ticks(ax, sorted({v for k in style for b in colours for v, _ in res.sweep(axis, k, b)}))
        ax.set_xlabel(axis)
        ax.set_title(f"time against {axis} (dotted: slope {power})")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("median seconds (2 threads)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "scaling.png"), dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ns = sorted({r.size[0] for r in res.all if r.kernel == "matmul"})
    ax.plot(ns, [res.matmul_rate(n, 2) for n in ns], "k-^", label="NumPy matmul (M x N)(N x N)")
    for backend, colour in colours.items():
        for kernel, st in style.items():
            pts = [(n, res.get(kernel, backend, 2, (n,) + res.paper[1:])) for n in ns]
            pts = [(n, r.gflop / r.median) for n, r in pts if r is not None]
            if pts:
                ax.plot(*zip(*pts), st, color=colour, label=f"{LABEL[backend]}, {KERNEL_LABEL[kernel]}")
    ax.set_xscale("log")
    label_ticks(ax, ns)
    ax.set_xlabel(f"N (M = {res.paper[1]}, T = {res.paper[2]})")
    ax.set_ylabel("GFLOP/s (2 threads)")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "gflops.png"), dpi=110)
    plt.close(fig)
    return ["scaling.png", "gflops.png"]


def grid_section(res):
    """The positive-control model: every backend and PyTorch, seconds, GFLOP/s, ratios, targets."""
    runs = {(r.kernel, r.backend, r.threads): r for r in res.grid}
    size = res.grid[0].info
    head = (f"Model: discrete ReLU RNN (alpha = 1), softmax readout over Np = {size['n_place_cells']} place "
            f"cells, encoded initial state; N = {size['n']}, M = {size['m']}, T = {size['t']}, no noise, "
            "float64. GFLOP/s count 2 M T N (N + Np) flops per product over the batch "
            "(`benchmarks/harness.py`, `Size.flop_unit`).")
    rows = []
    for kernel in ("forward", "gradient", "gn_product"):
        torch_best = min((runs[k].median for k in runs if k[0] == kernel and k[1] == "torch"), default=None)
        for backend in ("c", "numba", "numpy", "torch"):
            for threads in (1, 2):
                r = runs.get((kernel, backend, threads))
                if r is not None:
                    rows.append([KERNEL_LABEL[kernel], LABEL[backend], threads, fmt_s(r.median), r.rounds,
                                 fmt(r.gflop / r.median, ".1f"), fmt(ratio(torch_best, r.median), ".2f") + "x"])
    table = md_table(["kernel", "backend", "threads", "median", "rounds", "GFLOP/s", "vs faster PyTorch"], rows)
    verdict = {True: "met", False: "**not met**", None: "not measured"}
    checks = []
    for kernel in ("gradient", "gn_product"):
        c = runs.get((kernel, "c", 2))
        tanh = next((r for r in res.all if r.kernel == kernel and r.backend == "c" and r.threads == 2
                     and r.size == (100, 500, 500)), None)
        rate = None if c is None else c.gflop / c.median
        tanh_rate = None if tanh is None else tanh.gflop / tanh.median
        checks.append([f"C {KERNEL_LABEL[kernel]} GFLOP/s >= the tanh model's at paper size",
                       f"{fmt(rate, '.1f')} vs {fmt(tanh_rate, '.1f')}",
                       verdict[None if rate is None or tanh_rate is None else rate >= tanh_rate]])
        torch_best = min((runs[k].median for k in runs if k[0] == kernel and k[1] == "torch"), default=None)
        sp = ratio(torch_best, None if c is None else c.median)
        checks.append([f"C {KERNEL_LABEL[kernel]} >= 2x the faster PyTorch", f"{fmt(sp, '.2f')}x",
                       verdict[None if sp is None else sp >= 2]])
    return "\n\n".join([head, table, md_table(["target (2 threads, medians)", "measured", "verdict"], checks)])


def float32_section(res):
    """float64 against float32 (``test_float32.py``): seconds and ratio per kernel, size,
    backend and threads, and the 1.7x target (2 threads, both sizes, the C core)."""
    runs = {(r.kernel, r.backend, r.threads, r.info["model"], r.info["dtype"]): r for r in res.dtypes}
    rows, checks = [], []
    verdict = {True: "met", False: "**not met**", None: "not measured"}
    for model in ("paper", "grid"):
        size = next((r for r in res.dtypes if r.info["model"] == model), None)
        if size is None:
            continue
        label = f"{'paper' if model == 'paper' else 'positive control'} ({size_text(size.size)})"
        for kernel in ("gradient", "gn_product"):
            for backend in FAST:
                for threads in (1, 2):
                    a, b = (runs.get((kernel, backend, threads, model, d)) for d in ("float64", "float32"))
                    if a is None or b is None:
                        continue
                    rows.append([KERNEL_LABEL[kernel], label, LABEL[backend], threads, fmt_s(a.median),
                                 fmt_s(b.median), fmt(ratio(a.median, b.median), ".2f") + "x"])
                    if backend == "c" and threads == 2:
                        sp = ratio(a.median, b.median)
                        checks.append([f"C {KERNEL_LABEL[kernel]}, {label}: float32 >= {F32_TARGET}x faster",
                                       f"{fmt(sp, '.2f')}x", verdict[None if sp is None else sp >= F32_TARGET]])
    table = md_table(["kernel", "size", "backend", "threads", "float64", "float32", "float64 / float32"], rows)
    timer = res.dtypes[0].info.get("timer")
    head = (f"Medians of each kernel's rounds, timed with `{timer}`"
            + (" (CPU seconds of the process: on 2 threads the sum over both)." if "process_time" in str(timer)
               else "."))
    return "\n\n".join([head, table, md_table(["target (2 threads, medians)", "measured", "verdict"], checks)])


def report(res, run, figures=None, figure_prefix=""):
    """The generated part of docs/performance.md."""
    parts = ["### The run", run_section(run, res),
             f"### Paper size ({size_text(res.paper)}, float64)", paper_section(res),
             "### The machine: NumPy's matrix multiply on the per-step shapes, memory bandwidth", matmul_section(res),
             "### Scaling", sweep_section(res)]
    if figures:
        parts.append(" ".join(f"![{name}]({figure_prefix}{name})" for name in figures))
    parts += ["### Around the kernels", pipeline_section(res),
              "### Targets", targets_section(res)]
    return "\n\n".join(parts) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", help="pytest-benchmark --benchmark-json output")
    ap.add_argument("--doc", help="markdown page whose report block to rewrite")
    ap.add_argument("--figures", help="folder for the PNG plots")
    args = ap.parse_args(argv)
    results, run = load(args.results)
    res = Results(results)
    blocks = []
    if res.paper is not None:
        figures, prefix = None, ""
        if args.figures:
            figures = plot(res, args.figures)
            base = os.path.dirname(os.path.abspath(args.doc)) if args.doc else os.getcwd()
            prefix = os.path.relpath(os.path.abspath(args.figures), base) + "/"
        blocks.append((BEGIN, END, report(res, run, figures, prefix)))
    if res.grid:
        blocks.append((GRID_BEGIN, GRID_END, "### The run\n\n" + run_section(run, res) + "\n\n"
                       + grid_section(res) + "\n"))
    if res.dtypes:
        blocks.append((F32_BEGIN, F32_END, "### The run\n\n" + run_section(run, res) + "\n\n"
                       + float32_section(res) + "\n"))
    if not blocks:
        sys.exit(f"{args.results}: no paper-size kernels (test_kernels.py), grid model's or float32 results")
    if not args.doc:
        sys.stdout.write("\n".join(text for _, _, text in blocks))
        return
    with open(args.doc) as fh:
        page = fh.read()
    for begin, end, text in blocks:
        pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
        if not pattern.search(page):
            sys.exit(f"{args.doc}: no {begin} ... {end} block to rewrite")
        page = pattern.sub(lambda _, b=begin, e=end, x=text: f"{b}\n\n{x}\n{e}", page)
    with open(args.doc, "w") as fh:
        fh.write(page)


if __name__ == "__main__":
    main()
