"""What is specific to the C core; the shared contract is in test_backends.py."""

import functools
import importlib
import importlib.util
import json
import operator
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from problems import random_problem

from gridcore import Batch, Params, Regularization
from gridcore.backends import reference
from gridcore.backends.c import ccore
from gridcore.backends.c.backend import (
    INITIAL_STATE_CODES,
    MAX_THREADS,
    PHI_CODES,
    READOUT_CODES,
    CBackend,
    available_isas,
    model_struct,
)
from gridcore.backends.c.ccore import ffi, lib
from gridcore.model.layout import ParamLayout
from gridcore.model.spec import INITIAL_STATES, NONLINEARITIES, PAPER, READOUTS

CSRC = Path(__file__).resolve().parents[1] / "csrc"
needs_make = pytest.mark.skipif(
    not (CSRC / "Makefile").exists() or shutil.which("make") is None or shutil.which("cc") is None,
    reason="needs the source tree's csrc/, make and cc")


def assert_close(got, want, rtol=1e-10):
    scale = max(np.max(np.abs(want)), 1e-300)
    assert np.max(np.abs(np.asarray(got) - want)) <= rtol * scale


def example_problem():
    """The problem of csrc/examples/example.c, from the same closed formulas."""
    n, n_in, n_out, m, t = 5, 2, 2, 3, 7
    p = n * (n + n_in + 1 + n_out)
    params = Params.from_flat(0.5 * np.sin(0.7 * np.arange(p) + 0.3), n, n_in, n_out)
    inputs = np.cos(1.3 * np.arange(m * t * n_in)).reshape(m, t, n_in)
    targets = 0.4 * np.sin(0.5 * np.arange(m * t * n_out)).reshape(m, t, n_out)
    return params, Batch(inputs, targets), Regularization(0.01, 0.02)


def run_example(build_dir, threads, openmp=True):
    subprocess.run(["make", "-s", "-C", str(CSRC), f"BUILD={build_dir}", f"OPENMP={int(openmp)}"],
                   check=True, capture_output=True, text=True, timeout=300)
    out = subprocess.run([str(Path(build_dir, "examples", "example")), str(threads)],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return dict(re.findall(r"^(\w+) (\S+)$", out, re.M))


@needs_make
def test_example_program_matches_the_python_backend(tmp_path):
    got = run_example(tmp_path, threads=2)
    assert got["openmp"] == "1"
    assert int(got["abi"]) == lib.GRC_ABI_VERSION
    params, batch, reg = example_problem()
    c = CBackend(threads=2)
    y = c.forward(params, batch.inputs).y
    terms, grad = c.gradient(params, batch, reg)
    # The same sources and thread count: the same bits, printed with 17 digits
    # and summed in order as the example does.
    assert float(got["loss"]) == terms["loss"]
    assert float(got["sum_y"]) == functools.reduce(operator.add, y.ravel().tolist())
    assert float(got["sum_grad"]) == functools.reduce(operator.add, grad.tolist())
    wout = ParamLayout(*params.shape)["Wout"]              # the example finds it by grc_param_layout
    assert float(got["sum_grad_wout"]) == functools.reduce(operator.add, grad[wout.offset:wout.stop].tolist())
    _, want = reference.gradient(params, batch, reg)
    assert float(got["sum_grad"]) == pytest.approx(np.sum(want), rel=1e-10)


@pytest.mark.slow
@needs_make
def test_serial_build_gives_the_same_bits_per_thread_count(tmp_path):
    # Without OpenMP the partitions run one after the other: same sums, same order.
    assert run_example(tmp_path / "serial", threads=2, openmp=False) == \
        {**run_example(tmp_path / "omp", threads=2), "openmp": "0"}


def test_built_with_openmp():
    # A build that silently fell back to serial must not pass CI.
    if os.environ.get("GRIDCORE_NO_OPENMP"):
        pytest.skip("GRIDCORE_NO_OPENMP is set")
    assert lib.grc_openmp_enabled() == 1
    assert CBackend().info()["openmp"] is True


def test_info_reports_the_build():
    info = CBackend(threads=1).info()
    assert info["backend"] == "c" and info["threads"] == 1
    assert info["abi_version"] == ccore.ABI_VERSION and info["max_threads_cap"] == MAX_THREADS
    assert info["isa"] in info["isas_available"]
    assert "-O3" in info["build_flags"]
    assert {"max_threads", "blas", "OPENBLAS_CORETYPE"} <= set(info)


@pytest.mark.parametrize("status, words", [
    (lib.GRC_OK, "success"), (lib.GRC_ENOMEM, "out of memory"), (lib.GRC_ESHAPE, "invalid shape"),
    (lib.GRC_ESHAPE, "2 for GRC_READOUT_XY"), (lib.GRC_ESHAPE, str(lib.GRC_MAX_DIM)),
    (lib.GRC_ENULL, "NULL"), (lib.GRC_EALPHA, "alpha"), (lib.GRC_EREG, "lam_l2, lam_fr and mu"),
    (lib.GRC_EISA, "instruction set"), (lib.GRC_ETHREADS, f"threads must be in 0..{lib.GRC_MAX_THREADS}"),
    (lib.GRC_EMODEL, "model.nonlinearity"), (lib.GRC_EMODEL, "initial_state"),
    (lib.GRC_EWORKSPACE, "destroyed"), (-999, "unknown")])
def test_strerror(status, words):
    assert words in ffi.string(lib.grc_strerror(status)).decode()


# ---- the ABI version -------------------------------------------------------

def test_abi_versions_agree():
    header = (CSRC / "gridcore.h").read_text() if CSRC.exists() else None
    if header is not None:
        assert int(re.search(r"#define GRC_ABI_VERSION (\d+)", header).group(1)) == ccore.ABI_VERSION
    assert lib.GRC_ABI_VERSION == lib.grc_abi_version() == ccore.ABI_VERSION
    ccore.check_abi_version()                              # the import-time check passes


def test_abi_mismatch_is_refused(monkeypatch):
    monkeypatch.setattr(ccore, "ABI_VERSION", ccore.ABI_VERSION + 1)
    with pytest.raises(ImportError, match=r"expects ABI version .*pip install -e \."):
        ccore.check_abi_version()
    # a library from before versioning has neither the constant nor the function
    with pytest.raises(ImportError, match=r"no ABI version .*pip install -e \."):
        ccore.check_abi_version(library=object())


def test_stale_extension_makes_the_backend_unavailable(monkeypatch):
    """A stale build (another ABI version) is refused at import; the registry says how to rebuild."""
    class StaleLib:
        GRC_ABI_VERSION = 1

        @staticmethod
        def grc_abi_version():
            return 1

    stale = type(sys)("gridcore.backends.c._gridcore_c")
    stale.ffi, stale.lib = ffi, StaleLib()
    monkeypatch.setitem(sys.modules, "gridcore.backends.c._gridcore_c", stale)
    for name in ("gridcore.backends.c.ccore", "gridcore.backends.c.backend"):
        monkeypatch.delitem(sys.modules, name)             # restored after the test
    import gridcore.backends as registry
    assert "c" not in registry.available_backends()
    with pytest.raises(ImportError, match=r"backend 'c' is not available .*ABI version 1.*pip install -e \."):
        registry.get_backend("c")


# ---- the model and its codes -----------------------------------------------

def test_model_codes_match_the_header():
    # every allowed spec value has a code, equal to the header's #define
    assert set(PHI_CODES) == set(NONLINEARITIES)
    assert set(READOUT_CODES) == set(READOUTS)
    assert set(INITIAL_STATE_CODES) == set(INITIAL_STATES)
    for name, code in NONLINEARITIES.items():
        assert PHI_CODES[name] == code == getattr(lib, f"GRC_PHI_{name.upper()}")
    for name, code in READOUT_CODES.items():
        assert code == getattr(lib, f"GRC_READOUT_{name.upper()}")
    for name, code in INITIAL_STATE_CODES.items():
        assert code == getattr(lib, f"GRC_X0_{name.upper()}")


def test_model_struct_of_the_paper_spec():
    assert model_struct(PAPER) == {"alpha": 0.1, "nonlinearity": lib.GRC_PHI_TANH,
                                   "readout": lib.GRC_READOUT_XY, "initial_state": lib.GRC_X0_ZERO}


@pytest.mark.parametrize("n_units, n_in, n_out", [(1, 1, 2), (6, 2, 2), (100, 2, 2), (7, 13, 2), (250, 1, 2)])
def test_param_layout_equals_python_layout(n_units, n_in, n_out):
    out = ffi.new("grc_layout *")
    shape = {"n_units": n_units, "n_in": n_in, "n_out": n_out, "n_trials": 1, "n_steps": 1}
    assert lib.grc_param_layout(shape, model_struct(PAPER), out) == lib.GRC_OK
    want = ParamLayout(n_units, n_in, n_out)
    assert (out.off_wrec, out.off_win, out.off_b, out.off_wout, out.size) == \
        (want["Wrec"].offset, want["Win"].offset, want["b"].offset, want["Wout"].offset, want.size)


def test_param_layout_checks_its_arguments():
    out = ffi.new("grc_layout *")
    shape = {"n_units": 5, "n_in": 2, "n_out": 2, "n_trials": 1, "n_steps": 1}
    model = model_struct(PAPER)
    assert lib.grc_param_layout(shape, model, ffi.NULL) == lib.GRC_ENULL
    assert lib.grc_param_layout({**shape, "n_out": 3}, model, out) == lib.GRC_ESHAPE
    assert lib.grc_param_layout(shape, {**model, "readout": 7}, out) == lib.GRC_EMODEL
    assert lib.grc_param_layout(shape, {**model, "alpha": 0.0}, out) == lib.GRC_EALPHA


class TestCArgumentChecks:
    """The C entry points defend themselves too (for embedders without the wrapper)."""

    def setup_method(self):
        out = ffi.new("grc_workspace **")
        assert lib.grc_workspace_create(1, lib.GRC_ISA_AUTO, out) == lib.GRC_OK
        self.ws = ffi.gc(out[0], lib.grc_workspace_destroy)
        self.params, self.batch, _ = random_problem()
        self.shape = {"n_units": 6, "n_in": 2, "n_out": 2, "n_trials": 3, "n_steps": 7}
        self.theta = ffi.from_buffer("double[]", self.params.flat)
        self.inputs = ffi.from_buffer("double[]", self.batch.inputs)
        self.targets = ffi.from_buffer("double[]", self.batch.targets)
        self.out = ffi.new("double[]", self.params.flat.size + 3 * 7 * 6)
        self.terms = ffi.new("double[4]")
        self.model = model_struct(PAPER)

    def loss(self, shape=None, alpha=0.1, lam=0.0, inputs=None, ws=None, **codes):
        return lib.grc_loss(self.ws if ws is None else ws, shape or self.shape,
                            {**self.model, "alpha": alpha, **codes}, self.theta,
                            self.inputs if inputs is None else inputs, self.targets,
                            ffi.NULL, lam, 0.0, self.terms)

    def test_good_call(self):
        assert self.loss() == lib.GRC_OK

    @pytest.mark.parametrize("alpha", [0.0, -0.1, 1.5, -0.0, float("nan"), float("inf"), float("-inf")])
    def test_alpha(self, alpha):
        assert self.loss(alpha=alpha) == lib.GRC_EALPHA

    @pytest.mark.parametrize("field", ["nonlinearity", "readout", "initial_state"])
    @pytest.mark.parametrize("code", ["next", -1, 2**31 - 1, -2**31])
    def test_unknown_model_code(self, field, code):
        known = {"nonlinearity": PHI_CODES, "readout": READOUT_CODES, "initial_state": INITIAL_STATE_CODES}[field]
        code = max(known.values()) + 1 if code == "next" else code      # the first code not in use
        assert self.loss(**{field: code}) == lib.GRC_EMODEL

    @pytest.mark.parametrize("n_out", [1, 3])
    def test_xy_readout_needs_two_outputs(self, n_out):
        # arrays long enough for n_out = 3: the call must be refused, not run
        targets = ffi.new("double[]", 3 * 7 * 3)
        assert lib.grc_loss(self.ws, {**self.shape, "n_out": n_out}, self.model, self.theta,
                            self.inputs, targets, ffi.NULL, 0.0, 0.0, self.terms) == lib.GRC_ESHAPE

    @pytest.mark.parametrize("lam", [-1.0, float("inf"), float("nan")])
    def test_weights(self, lam):
        assert self.loss(lam=lam) == lib.GRC_EREG

    @pytest.mark.parametrize("key", ["n_units", "n_in", "n_out", "n_trials", "n_steps"])
    def test_empty_dimension(self, key):
        assert self.loss(shape={**self.shape, key: 0}) == lib.GRC_ESHAPE

    def test_huge_dimensions(self):
        assert self.loss(shape={**self.shape, "n_trials": 2**40, "n_steps": 2**30}) == lib.GRC_ESHAPE

    def test_null(self):
        assert self.loss(inputs=ffi.NULL) == lib.GRC_ENULL

    def test_null_workspace(self):
        assert self.loss(ws=ffi.NULL) == lib.GRC_ENULL
        buf = self.out
        model = self.model
        assert lib.grc_forward(ffi.NULL, self.shape, model, self.theta, self.inputs, ffi.NULL,
                               ffi.NULL, ffi.NULL, buf, buf) == lib.GRC_ENULL
        assert lib.grc_gradient(ffi.NULL, self.shape, model, self.theta, self.inputs, self.targets,
                                ffi.NULL, 0.0, 0.0, self.terms, buf, ffi.NULL) == lib.GRC_ENULL
        assert lib.grc_gn_product(ffi.NULL, self.shape, model, self.theta, self.inputs, buf, buf,
                                  0.0, 0.0, 0.0, buf) == lib.GRC_ENULL
        assert lib.grc_workspace_threads(ffi.NULL) == lib.GRC_ENULL
        assert lib.grc_workspace_isa(ffi.NULL) == lib.GRC_ENULL
        assert lib.grc_workspace_bytes(ffi.NULL) == 0
        lib.grc_workspace_destroy(ffi.NULL)                  # allowed, does nothing

    def test_workspace_create(self):
        out = ffi.new("grc_workspace **")
        assert lib.grc_workspace_create(-1, lib.GRC_ISA_AUTO, out) == lib.GRC_ETHREADS
        assert lib.grc_workspace_create(lib.GRC_MAX_THREADS + 1, lib.GRC_ISA_AUTO, out) == lib.GRC_ETHREADS
        assert lib.grc_workspace_create(40000, lib.GRC_ISA_AUTO, out) == lib.GRC_ETHREADS
        assert lib.grc_workspace_create(2**31 - 1, lib.GRC_ISA_AUTO, out) == lib.GRC_ETHREADS
        assert lib.grc_workspace_create(1, 99, out) == lib.GRC_EISA
        assert out[0] == ffi.NULL
        assert lib.grc_workspace_create(1, lib.GRC_ISA_AUTO, ffi.NULL) == lib.GRC_ENULL
        # the cap itself is allowed (no thread starts before a call)
        assert lib.grc_workspace_create(lib.GRC_MAX_THREADS, lib.GRC_ISA_AUTO, out) == lib.GRC_OK
        assert lib.grc_workspace_threads(out[0]) == lib.GRC_MAX_THREADS
        lib.grc_workspace_destroy(out[0])
        assert 1 <= lib.grc_max_threads() <= lib.GRC_MAX_THREADS

    def test_create_destroy_cycles(self):
        out = ffi.new("grc_workspace **")
        for i in range(50):
            assert lib.grc_workspace_create(1 + i % 3, lib.GRC_ISA_AUTO, out) == lib.GRC_OK
            assert self.loss(ws=out[0]) == lib.GRC_OK
            assert lib.grc_workspace_bytes(out[0]) > 0
            lib.grc_workspace_destroy(out[0])
        assert self.loss() == lib.GRC_OK                     # other workspaces are untouched


# Runs the raw C entry points on the cases in argv[1] (JSON), in a process of its own
# so that a crash fails one test instead of killing pytest; prints one status per case.
_RAW_CALLS = textwrap.dedent("""
    import json, sys
    from gridcore.backends.c.ccore import ffi, lib
    out = ffi.new("grc_workspace **")
    assert lib.grc_workspace_create(2, lib.GRC_ISA_AUTO, out) == 0
    ws = out[0]
    buf = ffi.new("double[]", 4096)          # small, valid, never NULL
    terms, layout = ffi.new("double[4]"), ffi.new("grc_layout *")
    model = {"alpha": 0.1, "nonlinearity": 0, "readout": 0, "initial_state": 0}
    for i, shape in enumerate(json.loads(sys.argv[1])):
        print(i, end="\t", flush=True)  # names the case if the next call crashes
        rcs = [lib.grc_forward(ws, shape, model, buf, buf, buf, buf, buf, buf, buf),
               lib.grc_forward(ws, shape, model, buf, buf, ffi.NULL, ffi.NULL, ffi.NULL, buf, buf),
               lib.grc_loss(ws, shape, model, buf, buf, buf, buf, 0.1, 0.1, terms),
               lib.grc_gradient(ws, shape, model, buf, buf, buf, buf, 0.1, 0.1, terms, buf, buf),
               lib.grc_gn_product(ws, shape, model, buf, buf, buf, buf, 0.1, 0.1, 0.1, buf),
               lib.grc_param_layout(shape, model, layout)]
        print(json.dumps(rcs), flush=True)
""")

I64_MAX = 2**63 - 1
EXTREMES = [I64_MAX, I64_MAX - 1, 2**62, 2**32, 2**31, 0, -1, -2**31, -2**63]
SMALL = {"n_units": 3, "n_in": 2, "n_out": 2, "n_trials": 2, "n_steps": 3}


def _bad_shapes():
    """Shapes every entry point must refuse with GRC_ESHAPE before touching an array."""
    dim_max = lib.GRC_MAX_DIM
    shapes = [{**SMALL, key: value} for key in SMALL for value in EXTREMES]
    shapes += [  # each dimension valid, the sizes too big: products that overflow or pass the caps
        {**SMALL, "n_units": dim_max}, {**SMALL, "n_units": 2**28}, {**SMALL, "n_in": dim_max},
        {**SMALL, "n_trials": dim_max, "n_steps": dim_max},
        {**SMALL, "n_trials": 2**27, "n_steps": 2**27},
        {**SMALL, "n_trials": 2**31 - 1, "n_steps": 2**31 - 1, "n_units": 2**31 - 1},
        {"n_units": dim_max, "n_in": dim_max, "n_out": dim_max, "n_trials": dim_max, "n_steps": dim_max},
        {**SMALL, "n_trials": 2**40, "n_steps": 2**30},
        {**SMALL, "n_out": 3}, {**SMALL, "n_out": 1},        # the xy readout has 2 outputs
    ]
    rng = np.random.default_rng(23)                           # random sizes at the limits
    for _ in range(200):
        shape = dict(SMALL)
        for key in rng.choice(list(SMALL), size=rng.integers(1, 6), replace=False):
            shape[key] = int(rng.choice([1, -1])) * int(2 ** rng.uniform(31, 63)) - int(rng.integers(0, 3))
        shapes.append(shape)
    return shapes


def test_bad_shapes_never_crash():
    cases = _bad_shapes()
    run = subprocess.run([sys.executable, "-c", _RAW_CALLS, json.dumps(cases)],
                         capture_output=True, text=True, timeout=300)
    last = run.stdout.split("\t")[-2].split()[-1] if "\t" in run.stdout else None
    assert run.returncode == 0, (f"crashed (status {run.returncode}) on case {cases[int(last)] if last else None}: "
                                 f"{run.stderr[-2000:]}")
    lines = run.stdout.splitlines()
    assert len(lines) == len(cases)
    for case, line in zip(cases, lines):
        index, rcs = line.split("\t")
        assert json.loads(rcs) == [lib.GRC_ESHAPE] * 6, case


def test_use_after_destroy_is_caught():
    """Best effort, and it reads freed memory (undefined behaviour), so it runs in a
    process of its own: a call on a destroyed workspace returns GRC_EWORKSPACE and a
    second destroy is a no-op instead of a double free. Everything the calls need is
    allocated before the destroy, so nothing can reuse the freed block in between."""
    script = textwrap.dedent("""
        import json
        from gridcore.backends.c.ccore import ffi, lib
        out = ffi.new("grc_workspace **")
        assert lib.grc_workspace_create(1, lib.GRC_ISA_AUTO, out) == 0
        ws = out[0]
        buf, terms = ffi.new("double[]", 1024), ffi.new("double[4]")
        shape = ffi.new("grc_shape *", {"n_units": 3, "n_in": 2, "n_out": 2, "n_trials": 2, "n_steps": 3})[0]
        model = ffi.new("grc_model *", {"alpha": 0.1})[0]
        assert lib.grc_loss(ws, shape, model, buf, buf, buf, ffi.NULL, 0.0, 0.0, terms) == 0
        lib.grc_workspace_destroy(ws)
        rcs = [lib.grc_loss(ws, shape, model, buf, buf, buf, ffi.NULL, 0.0, 0.0, terms),
               lib.grc_workspace_threads(ws), lib.grc_workspace_isa(ws), lib.grc_workspace_bytes(ws)]
        lib.grc_workspace_destroy(ws)
        print(json.dumps(rcs))
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout) == [lib.GRC_EWORKSPACE] * 3 + [0]


def test_backend_arguments():
    for bad in (0, -1, MAX_THREADS + 1, 40000, 2.0, True, "2"):
        with pytest.raises(ValueError, match=rf"threads must be an integer in 1\.\.{MAX_THREADS} .*got"):
            CBackend(threads=bad)
    assert CBackend(threads=MAX_THREADS).threads == MAX_THREADS == lib.GRC_MAX_THREADS
    with pytest.raises(ValueError, match="unknown isa 'sse9'"):
        CBackend(isa="sse9")


@pytest.mark.parametrize("isa", available_isas())
def test_every_instruction_set_equals_reference(isa):
    params, batch, reg = random_problem(n_units=21, n_trials=9, n_steps=17, seed=11)
    c = CBackend(threads=2, isa=isa)
    assert c.isa == isa
    st = reference.forward(params, batch.inputs, batch.noise)
    assert_close(c.forward(params, batch.inputs, batch.noise).u, st.u)
    _, g, sq = c.gradient(params, batch, reg, sq_grad=True)
    _, want_g, want_sq = reference.gradient(params, batch, reg, sq_grad=True)
    assert_close(g, want_g)
    assert_close(sq, want_sq)
    v = np.random.default_rng(3).standard_normal(params.flat.size)
    assert_close(c.gn_product(params, batch, st, v, reg, mu=0.4),
                 reference.gn_product(params, batch, st, v, reg, mu=0.4))


def test_workspace_is_reused_across_shapes():
    c = CBackend(threads=2)
    big = random_problem(n_units=30, n_trials=10, n_steps=40, seed=1)
    small = random_problem(n_units=7, n_in=3, n_trials=3, n_steps=5, seed=2)
    first = c.gradient(*big, sq_grad=True)[1:]
    grown = c.workspace_bytes()
    small_grad = c.gradient(*small)[1]
    assert c.workspace_bytes() == grown                  # kept, not reallocated
    np.testing.assert_array_equal(small_grad, CBackend(threads=2).gradient(*small)[1])
    for a, b in zip(c.gradient(*big, sq_grad=True)[1:], first):
        np.testing.assert_array_equal(a, b)              # stale scratch does not leak in


def test_streaming_scratch_does_not_grow_with_time():
    params, _, _ = random_problem(n_units=20, n_trials=2)
    c = CBackend(threads=1)
    sizes = []
    for t in (100, 20_000):
        inputs = np.random.default_rng(t).standard_normal((2, t, 2))
        c.forward_stream(params, inputs)
        sizes.append(c.workspace_bytes())
    assert sizes[0] == sizes[1] < 100_000


def test_gn_product_scratch_is_small_next_to_the_states():
    # The GN product reads the stored u (M, T, N) and allocates only the
    # workspace (plus its (P,) result): peak <= 1.5x the states it needs.
    params, batch, reg = random_problem(n_units=20, n_trials=512, n_steps=50, seed=5)
    c = CBackend(threads=2)
    st = c.forward(params, batch.inputs, batch.noise)
    c = CBackend(threads=2)                              # fresh: count only the GN product
    c.gn_product(params, batch, st, params.flat, reg, mu=0.1)
    assert c.workspace_bytes() <= 0.5 * st.u.nbytes


@pytest.mark.slow
def test_gn_product_peak_rss_at_paper_size():
    """Peak resident memory of a GN product at the paper's size, in a fresh process."""
    script = textwrap.dedent("""
        import resource, sys
        import numpy as np
        sys.path.insert(0, sys.argv[1])
        from problems import random_problem
        from gridcore.backends.c.backend import CBackend
        params, batch, reg = random_problem(n_units=100, n_trials=500, n_steps=500, seed=0)
        c = CBackend(threads=2)
        u = np.empty((500, 500, 100))
        u[:] = 0.5                                  # touch: the states the GN product needs
        class S: pass
        st = S(); st.u = u
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        c.gn_product(params, batch, st, params.flat, reg, mu=0.1)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((peak - base) * 1024 / u.nbytes)
    """)
    out = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent)],
                         check=True, capture_output=True, text=True, timeout=300).stdout
    assert float(out) <= 0.5                             # extra over the states: <= 0.5x


@pytest.mark.parametrize("isa", available_isas())
def test_tanh_is_accurate(isa):
    # u_0 = tanh(x0): the core's vectorised tanh, read through a one-step forward pass.
    x0 = np.concatenate([np.linspace(-30, 30, 6001), np.geomspace(1e-300, 1, 301),
                         -np.geomspace(1e-300, 1, 301), [0.0, -0.0, 19.99, 20.0, 700.0]])
    params, _, _ = random_problem(n_units=1, n_in=1)
    u = CBackend(threads=2, isa=isa).forward(params, np.zeros((x0.size, 1, 1)), x0=x0[:, None]).u[:, 0, 0]
    assert np.max(np.abs(u - np.tanh(x0))) <= 4e-16
    assert np.all(np.abs(u) <= 1.0) and u[-1] == 1.0


@pytest.fixture
def builder(monkeypatch):
    """python/build_gridcore.py, imported from the source tree."""
    path = CSRC.parent / "python" / "build_gridcore.py"
    if not path.exists() or shutil.which("cc") is None:
        pytest.skip("needs the source tree's python/build_gridcore.py and cc")
    for var in ("GRIDCORE_NO_OPENMP", "GRIDCORE_REQUIRE_OPENMP", "CC"):
        monkeypatch.delenv(var, raising=False)
    spec = importlib.util.spec_from_file_location("build_gridcore", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_builder_reads_the_header(builder):
    cdef = builder.read_cdef()
    assert "int grc_gn_product(" in cdef and "#ifndef" not in cdef


def test_builder_openmp_switches(builder, monkeypatch):
    assert builder.openmp_flags() == ["-fopenmp"]
    monkeypatch.setenv("GRIDCORE_NO_OPENMP", "1")
    assert builder.openmp_flags() == []
    monkeypatch.delenv("GRIDCORE_NO_OPENMP")
    monkeypatch.setenv("CC", "false")                    # a compiler that always fails
    with pytest.warns(RuntimeWarning, match="SERIAL"):
        assert builder.openmp_flags() == []
    monkeypatch.setenv("GRIDCORE_REQUIRE_OPENMP", "1")
    with pytest.raises(RuntimeError, match="GRIDCORE_REQUIRE_OPENMP"):
        builder.openmp_flags()
