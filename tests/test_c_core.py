"""What is specific to the C core; the shared contract is in test_backends.py."""

import functools
import importlib
import importlib.util
import json
import math
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
from problems import SPECS, random_problem, spec_id

from gridcore import Batch, CounterNoise, ModelSpec, Params, Regularization
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
    noise_struct,
    reg_struct,
)
from gridcore.backends.c.ccore import ffi, lib
from gridcore.model.layout import ParamLayout
from gridcore.model.spec import INITIAL_STATES, NONLINEARITIES, PAPER, READOUTS

CSRC = Path(__file__).resolve().parents[1] / "csrc"
NO_NOISE = noise_struct(None)
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
    return params, Batch(inputs, targets, CounterNoise(42, 0.1)), Regularization(0.01, 0.02)


def _distributions(rows, cols, f, ph):
    """example.c's distributions(): rows of 1 + 0.5 sin(f i + ph), each divided by its sum
    (math.sin is the C library's sin, and the sums run in the same order)."""
    out = np.empty((rows, cols))
    for r in range(rows):
        row = [1.0 + 0.5 * math.sin(f * (r * cols + k) + ph) for k in range(cols)]
        total = 0.0
        for value in row:
            total += value
        out[r] = [value / total for value in row]
    return out


def example_place_cell_problem():
    """The place-cell problem of csrc/examples/example.c: (params, batch, reg, spec)."""
    n, n_in, n_pc, m, t = 5, 2, 4, 3, 7
    spec = ModelSpec(nonlinearity="relu", readout="place-cells", initial_state="encoded", n_place_cells=n_pc)
    p = n * (n + n_in + 1 + n_pc + n_pc)
    params = Params.from_flat([0.5 * math.sin(0.9 * i + 0.1) for i in range(p)], n, n_in, n_pc, n_pc)
    inputs = np.array([math.cos(1.3 * i) for i in range(m * t * n_in)]).reshape(m, t, n_in)
    targets = _distributions(m * t, n_pc, 0.5, 0.0).reshape(m, t, n_pc)
    codes = _distributions(m, n_pc, 0.3, 1.0)
    return params, Batch(inputs, targets, None, codes), Regularization(0.0, 0.02, 1e-3), spec


def _sum(values):
    return functools.reduce(operator.add, np.ravel(values).tolist())


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
    y = c.forward(params, batch.inputs, batch.noise).y
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

    # The place-cell model: loss and gradient are the same bits (same sources, x_0 = Wenc c
    # in C); y and G v to round-off, since Python forms x_0 = Wenc c itself for forward().
    params, batch, reg, spec = example_place_cell_problem()
    terms, grad = c.gradient(params, batch, reg, spec)
    assert float(got["pc_loss"]) == terms["loss"] and float(got["pc_E"]) == terms["E"]
    assert float(got["pc_sum_grad"]) == _sum(grad)
    wenc = params.layout["Wenc"]
    assert float(got["pc_sum_grad_wenc"]) == _sum(grad[wenc.offset:wenc.stop])
    state = c.forward(params, batch.inputs, spec=spec, start_codes=batch.start_codes)
    assert float(got["pc_sum_y"]) == pytest.approx(_sum(state.y), rel=1e-13)
    gv = c.gn_product(params, batch, state, params.flat, reg, mu=0.1, spec=spec)
    assert float(got["pc_sum_gv"]) == pytest.approx(_sum(gv), rel=1e-12)
    want_terms, want = reference.gradient(params, batch, reg, spec)
    assert float(got["pc_loss"]) == pytest.approx(want_terms["loss"], rel=1e-12)
    assert float(got["pc_sum_grad"]) == pytest.approx(np.sum(want), rel=1e-10)


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
    (lib.GRC_ESHAPE, "n_code must be >= 1 under GRC_X0_ENCODED"),
    (lib.GRC_ENULL, "NULL"), (lib.GRC_EALPHA, "alpha"),
    (lib.GRC_EREG, "reg.lam_l2, reg.lam_fr, reg.lam_rec and mu"),
    (lib.GRC_EISA, "instruction set"), (lib.GRC_ETHREADS, f"threads must be in 0..{lib.GRC_MAX_THREADS}"),
    (lib.GRC_EMODEL, "model.nonlinearity"), (lib.GRC_EMODEL, "initial_state"),
    (lib.GRC_EMODEL, "1 = place cells"), (lib.GRC_EMODEL, "1 = encoded"),
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
        assert code == getattr(lib, f"GRC_READOUT_{name.upper().replace('-', '_')}")
    for name, code in INITIAL_STATE_CODES.items():
        assert code == getattr(lib, f"GRC_X0_{name.upper()}")
    assert READOUT_CODES == {"xy": lib.GRC_READOUT_XY, "place-cells": lib.GRC_READOUT_PLACE_CELLS}
    assert INITIAL_STATE_CODES == {"zero": lib.GRC_X0_ZERO, "encoded": lib.GRC_X0_ENCODED}


def test_model_and_reg_structs():
    spec = ModelSpec(alpha=0.5, nonlinearity="relu", readout="place-cells", initial_state="encoded",
                     n_place_cells=3)
    assert model_struct(spec) == {"alpha": 0.5, "nonlinearity": lib.GRC_PHI_RELU,
                                  "readout": lib.GRC_READOUT_PLACE_CELLS, "initial_state": lib.GRC_X0_ENCODED}
    assert reg_struct(Regularization(0.1, 0.2, 0.3)) == {"lam_l2": 0.1, "lam_fr": 0.2, "lam_rec": 0.3}
    assert CBackend._shape(random_problem(spec=spec)[0], 4, 9) == \
        {"n_units": 6, "n_in": 2, "n_out": 3, "n_trials": 4, "n_steps": 9, "n_code": 3}


def test_model_struct_of_the_paper_spec():
    assert model_struct(PAPER) == {"alpha": 0.1, "nonlinearity": lib.GRC_PHI_TANH,
                                   "readout": lib.GRC_READOUT_XY, "initial_state": lib.GRC_X0_ZERO}


def _spec_of(readout, n_out, n_code):
    """A spec with the given readout whose outputs and Wenc columns are n_out and n_code."""
    if readout == "xy":
        return ModelSpec(initial_state="encoded" if n_code else "zero", n_place_cells=n_code)
    assert not n_code or n_code == n_out
    return ModelSpec(readout="place-cells", initial_state="encoded" if n_code else "zero", n_place_cells=n_out)


@pytest.mark.parametrize("n_units, n_in, n_out, n_code, readout", [
    (1, 1, 2, 0, "xy"), (6, 2, 2, 0, "xy"), (100, 2, 2, 0, "xy"), (7, 13, 2, 0, "xy"), (250, 1, 2, 0, "xy"),
    (6, 2, 2, 5, "xy"), (1, 1, 2, 1, "xy"), (9, 3, 1, 0, "place-cells"), (9, 3, 17, 17, "place-cells"),
    (30, 2, 256, 256, "place-cells")])
def test_param_layout_equals_python_layout(n_units, n_in, n_out, n_code, readout):
    out = ffi.new("grc_layout *")
    shape = {"n_units": n_units, "n_in": n_in, "n_out": n_out, "n_trials": 1, "n_steps": 1, "n_code": n_code}
    assert lib.grc_param_layout(shape, model_struct(_spec_of(readout, n_out, n_code)), out) == lib.GRC_OK
    want = ParamLayout(n_units, n_in, n_out, n_code)
    wenc = want["Wenc"].offset if n_code else want.size       # an empty Wenc block sits at the end
    assert (out.off_wrec, out.off_win, out.off_b, out.off_wout, out.off_wenc, out.size) == \
        (want["Wrec"].offset, want["Win"].offset, want["b"].offset, want["Wout"].offset, wenc, want.size)


def test_param_layout_checks_its_arguments():
    out = ffi.new("grc_layout *")
    shape = {"n_units": 5, "n_in": 2, "n_out": 2, "n_trials": 1, "n_steps": 1, "n_code": 0}
    model = model_struct(PAPER)
    encoded = {**model, "initial_state": lib.GRC_X0_ENCODED}
    assert lib.grc_param_layout(shape, model, ffi.NULL) == lib.GRC_ENULL
    assert lib.grc_param_layout({**shape, "n_out": 3}, model, out) == lib.GRC_ESHAPE
    assert lib.grc_param_layout(shape, {**model, "readout": 7}, out) == lib.GRC_EMODEL
    assert lib.grc_param_layout(shape, {**model, "initial_state": 2}, out) == lib.GRC_EMODEL
    assert lib.grc_param_layout(shape, {**model, "alpha": 0.0}, out) == lib.GRC_EALPHA
    assert lib.grc_param_layout({**shape, "n_code": 3}, model, out) == lib.GRC_ESHAPE   # no Wenc under zero
    assert lib.grc_param_layout(shape, encoded, out) == lib.GRC_ESHAPE                  # encoded needs Nc >= 1
    assert lib.grc_param_layout({**shape, "n_code": -1}, encoded, out) == lib.GRC_ESHAPE
    assert lib.grc_param_layout({**shape, "n_code": 3}, encoded, out) == lib.GRC_OK
    place = {**model, "readout": lib.GRC_READOUT_PLACE_CELLS}
    for n_out in (1, 2, 3, 512):                                  # any n_out for place cells
        assert lib.grc_param_layout({**shape, "n_out": n_out}, place, out) == lib.GRC_OK


class TestCArgumentChecks:
    """The C entry points defend themselves too (for embedders without the wrapper)."""

    def setup_method(self):
        out = ffi.new("grc_workspace **")
        assert lib.grc_workspace_create(1, lib.GRC_ISA_AUTO, out) == lib.GRC_OK
        self.ws = ffi.gc(out[0], lib.grc_workspace_destroy)
        self.params, self.batch, _ = random_problem()
        self.shape = {"n_units": 6, "n_in": 2, "n_out": 2, "n_trials": 3, "n_steps": 7, "n_code": 0}
        self.theta = ffi.from_buffer("double[]", self.params.flat)
        self.inputs = ffi.from_buffer("double[]", self.batch.inputs)
        self.targets = ffi.from_buffer("double[]", self.batch.targets)
        self.out = ffi.new("double[]", self.params.flat.size + 3 * 7 * 6)
        self.terms = ffi.new("double[5]")
        self.model = model_struct(PAPER)
        self.reg = {"lam_l2": 0.0, "lam_fr": 0.0, "lam_rec": 0.0}

    def loss(self, shape=None, alpha=0.1, lam=0.0, inputs=None, ws=None, **codes):
        return lib.grc_loss(self.ws if ws is None else ws, shape or self.shape,
                            {**self.model, "alpha": alpha, **codes}, self.theta,
                            self.inputs if inputs is None else inputs, self.targets,
                            NO_NOISE, ffi.NULL, {**self.reg, "lam_l2": lam}, self.terms)

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
                            self.inputs, targets, NO_NOISE, ffi.NULL, self.reg, self.terms) == lib.GRC_ESHAPE

    @pytest.mark.parametrize("lam", [-1.0, float("inf"), float("nan")])
    def test_weights(self, lam):
        assert self.loss(lam=lam) == lib.GRC_EREG

    @pytest.mark.parametrize("field", ["lam_l2", "lam_fr", "lam_rec"])
    @pytest.mark.parametrize("lam", [-1.0, -0.0 - 1e-300, float("inf"), float("-inf"), float("nan")])
    def test_every_reg_weight_is_checked(self, field, lam):
        reg = {**self.reg, field: lam}
        buf, terms = self.out, self.terms
        assert lib.grc_loss(self.ws, self.shape, self.model, self.theta, self.inputs, self.targets,
                            NO_NOISE, ffi.NULL, reg, terms) == lib.GRC_EREG
        assert lib.grc_gradient(self.ws, self.shape, self.model, self.theta, self.inputs, self.targets,
                                NO_NOISE, ffi.NULL, reg, terms, buf, ffi.NULL) == lib.GRC_EREG
        assert lib.grc_gn_product(self.ws, self.shape, self.model, self.theta, self.inputs, ffi.NULL,
                                  buf, ffi.NULL, buf, reg, 0.0, buf) == lib.GRC_EREG

    def _encoded(self, n_code=5, readout="xy"):
        """Arrays and structs of an encoded (and maybe place-cell) problem, with long enough buffers."""
        spec = _spec_of(readout, 2 if readout == "xy" else n_code, n_code)
        params, batch, reg = random_problem(spec=spec)
        keep = [params.flat, batch.inputs, batch.targets, batch.start_codes]
        self._keep = keep                                  # the buffers below point into these
        theta, inputs, targets, codes = (ffi.from_buffer("double[]", a) for a in keep)
        shape = {**self.shape, "n_out": params.n_out, "n_code": params.n_code}
        return shape, model_struct(spec), theta, inputs, targets, codes, reg_struct(reg)

    def test_codes_are_required_under_the_encoded_initial_state(self):
        shape, model, theta, inputs, targets, codes, reg = self._encoded()
        (a, b, c_), terms = [ffi.new("double[]", 4096) for _ in range(3)], self.terms   # distinct: no overlap
        calls = {
            "forward": lambda c, x0: lib.grc_forward(self.ws, shape, model, theta, inputs, NO_NOISE, c, x0,
                                                     a, b, c_),
            "loss": lambda c, _: lib.grc_loss(self.ws, shape, model, theta, inputs, targets, NO_NOISE, c, reg,
                                              terms),
            "gradient": lambda c, _: lib.grc_gradient(self.ws, shape, model, theta, inputs, targets, NO_NOISE,
                                                      c, reg, terms, a, b),
            "gn_product": lambda c, _: lib.grc_gn_product(self.ws, shape, model, theta, inputs, c, a,
                                                          ffi.NULL, theta, reg, 0.1, b),
        }
        for name, call in calls.items():
            assert call(ffi.NULL, ffi.NULL) == lib.GRC_ENULL, name
            assert call(codes, ffi.NULL) == lib.GRC_OK, name
        # a given x0 overrides the encoded state: grc_forward then needs no codes
        x0 = ffi.new("double[]", 3 * 6)
        assert calls["forward"](ffi.NULL, x0) == lib.GRC_OK
        # under the zero initial state the codes are not needed (nor read)
        assert self.loss() == lib.GRC_OK

    def test_outputs_are_required_by_the_place_cell_gn_product(self):
        shape, model, theta, inputs, _, codes, reg = self._encoded(n_code=4, readout="place-cells")
        buf, gv = ffi.new("double[]", 4096), ffi.new("double[]", 4096)
        y = ffi.new("double[]", 3 * 7 * 4)
        assert lib.grc_gn_product(self.ws, shape, model, theta, inputs, codes, buf, ffi.NULL, theta, reg, 0.1,
                                  gv) == lib.GRC_ENULL
        assert lib.grc_gn_product(self.ws, shape, model, theta, inputs, codes, buf, y, theta, reg, 0.1,
                                  gv) == lib.GRC_OK
        # the x, y readout does not read them: NULL is fine there
        assert lib.grc_gn_product(self.ws, self.shape, self.model, self.theta, self.inputs, ffi.NULL, buf,
                                  ffi.NULL, self.theta, self.reg, 0.1, gv) == lib.GRC_OK

    @pytest.mark.parametrize("n_code, initial_state", [
        (0, "encoded"), (-1, "encoded"), (-2**63, "encoded"), (2**31, "encoded"), (2**63 - 1, "encoded"),
        (1, "zero"), (5, "zero"), (-1, "zero"), (2**63 - 1, "zero")])
    def test_n_code_must_fit_the_initial_state(self, n_code, initial_state):
        shape, model, theta, inputs, targets, codes, reg = self._encoded()
        model = {**model, "initial_state": INITIAL_STATE_CODES[initial_state]}
        assert lib.grc_loss(self.ws, {**shape, "n_code": n_code}, model, theta, inputs, targets, NO_NOISE,
                            codes, reg, self.terms) == lib.GRC_ESHAPE

    @pytest.mark.parametrize("n_out", [1, 3, 7])
    def test_place_cell_readout_takes_any_n_out(self, n_out):
        targets = np.full((3, 7, n_out), 1.0 / n_out)
        model = {**self.model, "readout": lib.GRC_READOUT_PLACE_CELLS}
        theta = ffi.new("double[]", 6 * (6 + 2 + 1 + n_out))
        assert lib.grc_loss(self.ws, {**self.shape, "n_out": n_out}, model, theta, self.inputs,
                            ffi.from_buffer("double[]", targets), NO_NOISE, ffi.NULL, self.reg,
                            self.terms) == lib.GRC_OK
        assert self.terms[0] == pytest.approx(math.log(n_out), rel=1e-15)   # zero weights: uniform p

    @pytest.mark.parametrize("key", ["n_units", "n_in", "n_out", "n_trials", "n_steps"])
    def test_empty_dimension(self, key):
        assert self.loss(shape={**self.shape, key: 0}) == lib.GRC_ESHAPE

    def test_huge_dimensions(self):
        assert self.loss(shape={**self.shape, "n_trials": 2**40, "n_steps": 2**30}) == lib.GRC_ESHAPE

    def test_null(self):
        assert self.loss(inputs=ffi.NULL) == lib.GRC_ENULL

    @pytest.mark.parametrize("where", ["theta", "inputs", "targets", "v"])
    @pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
    def test_non_finite_values_are_refused(self, where, value):
        arrays = {"theta": self.params.flat.copy(), "inputs": self.batch.inputs.copy(),
                  "targets": self.batch.targets.copy(), "v": np.ones(self.params.flat.size)}
        arrays[where].ravel()[5] = value
        a = {k: ffi.from_buffer("double[]", x) for k, x in arrays.items()}
        u = ffi.new("double[]", 3 * 7 * 6)
        y, x_end = ffi.new("double[]", 3 * 7 * 2), ffi.new("double[]", 3 * 6)
        calls = {
            "forward": lambda: lib.grc_forward(self.ws, self.shape, self.model, a["theta"], a["inputs"], NO_NOISE,
                                               ffi.NULL, ffi.NULL, u, y, x_end),
            "loss": lambda: lib.grc_loss(self.ws, self.shape, self.model, a["theta"], a["inputs"], a["targets"],
                                         NO_NOISE, ffi.NULL, self.reg, self.terms),
            "gradient": lambda: lib.grc_gradient(self.ws, self.shape, self.model, a["theta"], a["inputs"],
                                                 a["targets"], NO_NOISE, ffi.NULL, self.reg, self.terms, self.out,
                                                 ffi.NULL),
            "gn_product": lambda: lib.grc_gn_product(self.ws, self.shape, self.model, a["theta"], a["inputs"],
                                                     ffi.NULL, u, ffi.NULL, a["v"], self.reg, 0.0, self.out),
        }
        reads = {"theta": set(calls), "inputs": set(calls), "targets": {"loss", "gradient"}, "v": {"gn_product"}}
        for name, call in calls.items():
            want = lib.GRC_ENONFINITE if name in reads[where] else lib.GRC_OK
            assert call() == want, name

    def test_huge_finite_values_pass(self):
        theta = ffi.from_buffer("double[]", np.full(self.params.flat.size, 1e308))
        assert lib.grc_loss(self.ws, self.shape, self.model, theta, self.inputs, self.targets, NO_NOISE,
                            ffi.NULL, self.reg, self.terms) == lib.GRC_OK

    def test_null_workspace(self):
        assert self.loss(ws=ffi.NULL) == lib.GRC_ENULL
        buf = self.out
        model = self.model
        assert lib.grc_forward(ffi.NULL, self.shape, model, self.theta, self.inputs, NO_NOISE,
                               ffi.NULL, ffi.NULL, ffi.NULL, buf, buf) == lib.GRC_ENULL
        assert lib.grc_gradient(ffi.NULL, self.shape, model, self.theta, self.inputs, self.targets,
                                NO_NOISE, ffi.NULL, self.reg, self.terms, buf, ffi.NULL) == lib.GRC_ENULL
        assert lib.grc_gn_product(ffi.NULL, self.shape, model, self.theta, self.inputs, ffi.NULL, buf,
                                  ffi.NULL, buf, self.reg, 0.0, buf) == lib.GRC_ENULL
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


# Runs the raw C entry points on the cases in argv[1] (JSON: [shape, model] pairs), in a
# process of its own so that a crash fails one test instead of killing pytest; prints one
# status per case. Every pointer is a small valid buffer (codes and y included).
_RAW_CALLS = textwrap.dedent("""
    import json, sys
    from gridcore.backends.c.ccore import ffi, lib
    out = ffi.new("grc_workspace **")
    assert lib.grc_workspace_create(2, lib.GRC_ISA_AUTO, out) == 0
    ws = out[0]
    buf = ffi.new("double[]", 4096)          # small, valid, never NULL: every input
    o1, o2, o3 = (ffi.new("double[]", 4096) for _ in range(3))    # outputs: no overlap (GRC_EOVERLAP)
    terms, layout = ffi.new("double[5]"), ffi.new("grc_layout *")
    reg = {"lam_l2": 0.1, "lam_fr": 0.1, "lam_rec": 0.1}
    none = {"xi": ffi.NULL, "std": 0.0, "seed": 0, "trial0": 0, "step0": 0}   # cffi: give every field
    nz = {**none, "xi": buf}
    for i, (shape, model) in enumerate(json.loads(sys.argv[1])):
        print(i, end="\t", flush=True)  # names the case if the next call crashes
        rcs = [lib.grc_forward(ws, shape, model, buf, buf, nz, buf, buf, o1, o2, o3),
               lib.grc_forward(ws, shape, model, buf, buf, none, buf, ffi.NULL, ffi.NULL, o2, o3),
               lib.grc_loss(ws, shape, model, buf, buf, buf, nz, buf, reg, terms),
               lib.grc_gradient(ws, shape, model, buf, buf, buf, nz, buf, reg, terms, o1, o2),
               lib.grc_gn_product(ws, shape, model, buf, buf, buf, buf, buf, buf, reg, 0.1, o1),
               lib.grc_param_layout(shape, model, layout)]
        print(json.dumps(rcs), flush=True)
""")

I64_MAX = 2**63 - 1
EXTREMES = [I64_MAX, I64_MAX - 1, 2**62, 2**32, 2**31, 0, -1, -2**31, -2**63]
SMALL = {"n_units": 3, "n_in": 2, "n_out": 2, "n_trials": 2, "n_steps": 3, "n_code": 0}
DIMS = ("n_units", "n_in", "n_out", "n_trials", "n_steps")
PAPER_MODEL = {"alpha": 0.1, "nonlinearity": 0, "readout": 0, "initial_state": 0}
ENCODED_MODEL = {"alpha": 0.1, "nonlinearity": 0, "readout": 1, "initial_state": 1}   # place cells too


def _bad_shapes():
    """Shapes every entry point must refuse with GRC_ESHAPE before touching an array,
    as [shape, model] pairs (cffi leaves a struct field missing from a dict undefined,
    so every shape names all six)."""
    dim_max = lib.GRC_MAX_DIM
    shapes = [{**SMALL, key: value} for key in DIMS for value in EXTREMES]
    shapes += [{**SMALL, "n_code": value} for value in EXTREMES if value != 0]      # no Wenc under zero
    shapes += [  # each dimension valid, the sizes too big: products that overflow or pass the caps
        {**SMALL, "n_units": dim_max}, {**SMALL, "n_units": 2**28}, {**SMALL, "n_in": dim_max},
        {**SMALL, "n_trials": dim_max, "n_steps": dim_max},
        {**SMALL, "n_trials": 2**27, "n_steps": 2**27},
        {**SMALL, "n_trials": 2**31 - 1, "n_steps": 2**31 - 1, "n_units": 2**31 - 1},
        {"n_units": dim_max, "n_in": dim_max, "n_out": dim_max, "n_trials": dim_max, "n_steps": dim_max},
        {**SMALL, "n_trials": 2**40, "n_steps": 2**30},
        {**SMALL, "n_out": 3}, {**SMALL, "n_out": 1},        # the xy readout has 2 outputs
    ]
    cases = [[shape, PAPER_MODEL] for shape in shapes]
    # the encoded initial state: n_code is a dimension too (1..GRC_MAX_DIM), in the size bound
    enc = {**SMALL, "n_code": 4}
    cases += [[{**enc, key: value}, ENCODED_MODEL] for key in (*DIMS, "n_code") for value in EXTREMES
              if not (key == "n_out" and value == 2**31)]            # n_out = 2^31 > GRC_MAX_DIM anyway
    cases += [[{**enc, **big}, ENCODED_MODEL] for big in (
        {"n_code": dim_max}, {"n_code": 2**28}, {"n_code": 2**27, "n_out": 2**27},
        {"n_code": dim_max, "n_trials": dim_max}, {"n_trials": 2**27, "n_steps": 2**27, "n_code": 2**10})]
    rng = np.random.default_rng(23)                           # random sizes at the limits
    for i in range(300):
        shape, model = (dict(SMALL), PAPER_MODEL) if i % 3 else (dict(enc), ENCODED_MODEL)
        keys = list(shape)
        for key in rng.choice(keys, size=rng.integers(1, 7), replace=False):
            shape[key] = int(rng.choice([1, -1])) * int(2 ** rng.uniform(31, 63)) - int(rng.integers(0, 3))
        cases.append([shape, model])
    return cases


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


def test_raw_calls_accept_the_small_shapes():
    # the harness itself: the base shapes of _bad_shapes() run (so ESHAPE above is the shape's doing)
    cases = [[SMALL, PAPER_MODEL], [{**SMALL, "n_code": 4}, ENCODED_MODEL],
             [{**SMALL, "n_out": 5, "n_code": 4}, ENCODED_MODEL]]
    run = subprocess.run([sys.executable, "-c", _RAW_CALLS, json.dumps(cases)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert [json.loads(line.split("\t")[1]) for line in run.stdout.splitlines()] == [[lib.GRC_OK] * 6] * 3


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
        buf, terms = ffi.new("double[]", 1024), ffi.new("double[5]")
        shape = ffi.new("grc_shape *", {"n_units": 3, "n_in": 2, "n_out": 2, "n_trials": 2, "n_steps": 3})[0]
        model = ffi.new("grc_model *", {"alpha": 0.1})[0]
        reg = ffi.new("grc_reg *")[0]
        assert lib.grc_loss(ws, shape, model, buf, buf, buf, ffi.new("grc_noise *")[0], ffi.NULL, reg, terms) == 0
        lib.grc_workspace_destroy(ws)
        rcs = [lib.grc_loss(ws, shape, model, buf, buf, buf, ffi.new("grc_noise *")[0], ffi.NULL, reg, terms),
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
@pytest.mark.parametrize("spec", [s for s in SPECS if s.alpha == 0.1 and s.nonlinearity == "tanh"], ids=spec_id)
def test_every_instruction_set_equals_reference(isa, spec):
    params, batch, reg = random_problem(n_units=21, n_trials=9, n_steps=17, seed=11, spec=spec)
    c = CBackend(threads=2, isa=isa)
    assert c.isa == isa
    st = reference.forward(params, batch.inputs, batch.noise, spec=spec, start_codes=batch.start_codes)
    assert_close(c.forward(params, batch.inputs, batch.noise, spec=spec, start_codes=batch.start_codes).u, st.u)
    terms, g, sq = c.gradient(params, batch, reg, spec, sq_grad=True)
    want_terms, want_g, want_sq = reference.gradient(params, batch, reg, spec, sq_grad=True)
    assert terms.keys() == want_terms.keys() == {"E", "R_L2", "R_FR", "R_rec", "loss"}
    for key in terms:
        assert terms[key] == pytest.approx(want_terms[key], rel=1e-12), key
    assert_close(g, want_g)
    assert_close(sq, want_sq)
    v = np.random.default_rng(3).standard_normal(params.flat.size)
    assert_close(c.gn_product(params, batch, st, v, reg, mu=0.4, spec=spec),
                 reference.gn_product(params, batch, st, v, reg, mu=0.4, spec=spec))


@pytest.mark.parametrize("spec", [ModelSpec(readout="place-cells", initial_state="encoded", n_place_cells=n)
                                  for n in (1, 3, 64, 512)], ids=lambda s: f"np{s.n_place_cells}")
def test_place_cells_at_many_sizes_and_blocks_equal_reference(spec):
    # Nout = Nc from 1 to the 512 of the paper-size place-cell model; M = 70 trials span three
    # blocks of 32 per partition, with 3 partitions, so blocks and partition sums are exercised.
    params, batch, reg = random_problem(n_units=13, n_trials=70, n_steps=5, seed=4, spec=spec)
    c = CBackend(threads=3)
    terms, g, sq = c.gradient(params, batch, reg, spec, sq_grad=True)
    want_terms, want_g, want_sq = reference.gradient(params, batch, reg, spec, sq_grad=True)
    assert terms["loss"] == pytest.approx(want_terms["loss"], rel=1e-12)
    assert_close(g, want_g)
    assert_close(sq, want_sq)
    st = c.forward(params, batch.inputs, batch.noise, spec=spec, start_codes=batch.start_codes)
    v = np.random.default_rng(5).standard_normal(params.flat.size)
    assert_close(c.gn_product(params, batch, st, v, reg, mu=0.2, spec=spec),
                 reference.gn_product(params, batch, st, v, reg, mu=0.2, spec=spec))
    assert c.loss(params, batch, reg, spec) == pytest.approx(want_terms, rel=1e-12)


def test_cross_entropy_is_stable_for_large_logits():
    # logits of +-1e3 (exp overflows without the max shift): E, the gradient and G v stay finite
    spec = ModelSpec(readout="place-cells", n_place_cells=6)
    params, batch, reg = random_problem(n_units=8, n_trials=4, n_steps=6, seed=2, spec=spec)
    big = Params(params.Wrec, params.Win, params.b, 2e3 * params.Wout)
    c = CBackend(threads=2)
    terms, g = c.gradient(big, batch, reg, spec)
    want_terms, want_g = reference.gradient(big, batch, reg, spec)
    assert np.isfinite(terms["E"]) and terms["E"] > 10
    assert terms["E"] == pytest.approx(want_terms["E"], rel=1e-12)
    assert np.all(np.isfinite(g))
    assert_close(g, want_g)
    st = c.forward(big, batch.inputs, batch.noise, spec=spec)
    gv = c.gn_product(big, batch, st, big.flat, reg, mu=0.1, spec=spec)
    assert np.all(np.isfinite(gv))
    assert_close(gv, reference.gn_product(big, batch, st, big.flat, reg, mu=0.1, spec=spec), rtol=1e-9)


@pytest.mark.parametrize("spec", [PAPER, ModelSpec(readout="place-cells", initial_state="encoded",
                                                    n_place_cells=9)], ids=spec_id)
@pytest.mark.parametrize("threads", [1, 3])
def test_sq_changes_the_gradient_by_round_off_only(spec, threads):
    # Without sq groups of trials are summed in the register tiles, with sq each trial's sums
    # are formed apart and then added: another order of the sum, so round-off apart; the
    # Wenc rows come from products over the trials either way. The loss is the same bits,
    # and each gradient is the same bits from call to call.
    params, batch, reg = random_problem(n_units=11, n_trials=40, n_steps=6, seed=8, spec=spec)
    c = CBackend(threads=threads)
    terms, g = c.gradient(params, batch, reg, spec)
    terms_sq, g_sq, _ = c.gradient(params, batch, reg, spec, sq_grad=True)
    assert_close(g_sq, g, rtol=1e-13)
    assert terms == terms_sq
    np.testing.assert_array_equal(c.gradient(params, batch, reg, spec)[1], g)
    np.testing.assert_array_equal(c.gradient(params, batch, reg, spec, sq_grad=True)[1], g_sq)


def test_wenc_gradient_stays_in_its_own_block():
    # A trial-by-trial view of sq and of the Wenc block: per-trial gradients from one-trial calls.
    spec = ModelSpec(initial_state="encoded", n_place_cells=4)
    params, batch, reg = random_problem(n_units=7, n_trials=5, n_steps=6, seed=9, spec=spec)
    c = CBackend(threads=2)
    _, g, sq = c.gradient(params, batch, reg, spec, sq_grad=True)
    per_trial = np.array([c.gradient(params, Batch(batch.inputs[m:m + 1], batch.targets[m:m + 1],
                                                   batch.noise[m:m + 1], batch.start_codes[m:m + 1]),
                                     reg, spec)[1] for m in range(5)])
    assert_close(g, per_trial.mean(axis=0))
    assert_close(sq, np.mean(per_trial ** 2, axis=0))
    wenc = params.layout["Wenc"]
    assert np.all(g[wenc.offset:wenc.stop] != 0.0)


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
