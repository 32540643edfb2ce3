"""What is specific to the C core; the shared contract is in test_backends.py."""

import functools
import importlib.util
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
from gridcore.backends.c.backend import CBackend, available_isas
from gridcore.backends.c.ccore import ffi, lib

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
    params, batch, reg = example_problem()
    c = CBackend(threads=2)
    y = c.forward(params, batch.inputs).y
    terms, grad = c.gradient(params, batch, reg)
    # The same sources and thread count: the same bits, printed with 17 digits
    # and summed in order as the example does.
    assert float(got["loss"]) == terms["loss"]
    assert float(got["sum_y"]) == functools.reduce(operator.add, y.ravel().tolist())
    assert float(got["sum_grad"]) == functools.reduce(operator.add, grad.tolist())
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
    assert info["isa"] in info["isas_available"]
    assert "-O3" in info["build_flags"]
    assert {"max_threads", "blas", "OPENBLAS_CORETYPE"} <= set(info)


@pytest.mark.parametrize("status, words", [
    (lib.GRC_OK, "success"), (lib.GRC_ENOMEM, "out of memory"), (lib.GRC_ESHAPE, "invalid shape"),
    (lib.GRC_ENULL, "NULL"), (lib.GRC_EALPHA, "alpha"), (lib.GRC_EREG, "lam_l2, lam_fr and mu"),
    (lib.GRC_EISA, "instruction set"), (lib.GRC_ETHREADS, "threads"), (-999, "unknown")])
def test_strerror(status, words):
    assert words in ffi.string(lib.grc_strerror(status)).decode()


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

    def loss(self, shape=None, alpha=0.1, lam=0.0, inputs=None):
        return lib.grc_loss(self.ws, shape or self.shape, self.theta,
                            self.inputs if inputs is None else inputs, self.targets,
                            ffi.NULL, alpha, lam, 0.0, self.terms)

    def test_good_call(self):
        assert self.loss() == lib.GRC_OK

    @pytest.mark.parametrize("alpha", [0.0, -0.1, 1.5, float("nan")])
    def test_alpha(self, alpha):
        assert self.loss(alpha=alpha) == lib.GRC_EALPHA

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

    def test_workspace_create(self):
        out = ffi.new("grc_workspace **")
        assert lib.grc_workspace_create(-1, lib.GRC_ISA_AUTO, out) == lib.GRC_ETHREADS
        assert lib.grc_workspace_create(1, 99, out) == lib.GRC_EISA
        assert out[0] == ffi.NULL
        assert lib.grc_workspace_create(1, lib.GRC_ISA_AUTO, ffi.NULL) == lib.GRC_ENULL


def test_backend_arguments():
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        CBackend(threads=0)
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
