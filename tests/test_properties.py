"""Property-based tests of the validators and public entry points (issue 23).

The rule, on every backend: a call either raises a clear error (TypeError or
ValueError naming the argument) or returns what the NumPy reference returns
for the same arguments. Hypothesis draws the model, the sizes, the dtypes and
memory layouts of the arrays, NaN and inf placed anywhere, wrong shapes and
sizes at the limits. The runs are bounded (``max_examples``, no deadline) so
the file takes well under 30 s; ``CASES`` counts the examples tried and the
last test prints the total.
"""

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from problems import SPECS, random_problem

from gridcore import Batch, ModelSpec, Params, Regularization, get_backend
from gridcore.backends import available_backends
from gridcore.model.batch import ForwardState
from gridcore.sim.arenas import ARENA_NAMES, MAX_SIZE, MIN_SIZE, Polygon, make_arena
from gridcore.util.checks import MAX_THREADS

CASES = Counter()
REFERENCE = get_backend("numpy")
FAST = {name: get_backend(name, threads=threads) for name, threads in (("numba", 1), ("c", 2))
        if name in available_backends()}
BACKENDS = {"numpy": REFERENCE, **FAST}
NUMBA_LIMIT = min(get_backend("numba").threads, MAX_THREADS) if "numba" in FAST else MAX_THREADS  # NUMBA_NUM_THREADS
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
KERNELS = settings(SETTINGS, max_examples=100)   # the tests that call every backend
RTOL, ATOL = 1e-9, 1e-12          # round-off between the cores (they agree to ~1e-13)

# How an argument is altered: kept (as another dtype or layout), spoilt, or replaced.
BENIGN = ("same", "float32", "int64", "fortran", "strided", "readonly", "list")
SPOILT = ("nan", "inf", "-inf", "axis+1", "axis-1", "extra_axis", "complex", "object", "str", "bool")
# A length changed by one may make another valid call (inputs of T + 1 steps) or clash with
# another argument (noise of T steps), whose name the error then gives.
RESIZED = ("axis+1", "axis-1")


def _alter(a, how, rng):
    """``a`` (a float64 array) altered as ``how`` says; see BENIGN and SPOILT."""
    a = np.array(a, dtype=np.float64)
    if how == "same":
        return a
    if how == "float32":
        return a.astype(np.float32)
    if how == "int64":
        return np.round(a * 3).astype(np.int64)
    if how == "fortran":
        return np.asfortranarray(a)
    if how == "strided":                      # a view with gaps between its entries
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],))
        big[..., ::2] = a
        return big[..., ::2]
    if how == "readonly":
        a.flags.writeable = False
        return a
    if how == "list":
        return a.tolist()
    if how in ("nan", "inf", "-inf"):
        a.flat[rng.integers(a.size)] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}[how]
        return a
    if how in ("axis+1", "axis-1"):
        axis = rng.integers(a.ndim)
        n = a.shape[axis] + (1 if how == "axis+1" else -1)
        return np.resize(a, a.shape[:axis] + (n,) + a.shape[axis + 1:])
    if how == "extra_axis":
        return a[..., None]
    if how == "complex":
        return a + 0j
    if how == "object":
        return a.astype(object)
    if how == "str":
        return a.astype(str)
    return a > 0                                # bool


def _agree(got, want):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def _outcome(call):
    """``("ok", result)`` or ``("error", exception)`` of a call that may only raise TypeError/ValueError."""
    try:
        return "ok", call()
    except (TypeError, ValueError) as err:
        return "error", err


def _check_rule(calls, names, compare, spoilt):
    """The rule for one case: ``calls`` maps backend -> thunk; every error names one of ``names``
    and comes from every backend alike; results equal the reference's (``compare``)."""
    ref_kind, ref = _outcome(calls["numpy"])
    if spoilt:
        assert ref_kind == "error", f"the reference accepted spoilt {names}"
    for name, call in calls.items():
        CASES["backend calls"] += 1
        kind, got = _outcome(call)
        assert kind == ref_kind, f"{name}: {kind} ({got}) but the reference: {ref_kind} ({ref})"
        CASES["errors named" if kind == "error" else "results equal"] += 1
        if kind == "error":
            assert type(got) is type(ref) and any(n in str(got) for n in names), \
                f"{name}: {got!r} names none of {names}"
        else:
            compare(got, ref)


problems = st.fixed_dictionaries({
    "spec": st.sampled_from(SPECS),
    "n_units": st.integers(1, 6), "n_in": st.integers(1, 3),
    "n_trials": st.integers(1, 5), "n_steps": st.integers(1, 5),
    "seed": st.integers(0, 2**32 - 1), "noise": st.booleans(),
})


@KERNELS
@given(problem=problems, arg=st.sampled_from(["inputs", "noise", "x0", "start_codes"]),
       how=st.sampled_from(BENIGN + SPOILT), data=st.data())
def test_forward_names_the_argument_or_equals_the_reference(problem, arg, how, data):
    CASES["forward"] += 1
    params, batch, _ = random_problem(**problem)
    spec = problem["spec"]
    rng = np.random.default_rng(problem["seed"])
    kwargs = {"inputs": batch.inputs, "noise": batch.noise}
    encoded = spec.initial_state == "encoded"
    if encoded and arg != "x0":
        kwargs["start_codes"] = batch.start_codes
    elif arg == "x0" or data.draw(st.booleans()):
        kwargs["x0"] = rng.standard_normal((batch.n_trials, params.n_units))
    if kwargs.get(arg) is None:
        return                                    # nothing of this kind in this problem
    kwargs[arg] = _alter(kwargs[arg], how, rng)
    calls = {name: (lambda be=be: be.forward(params, spec=spec, **kwargs)) for name, be in BACKENDS.items()}

    def compare(got, want):
        _agree(got.y, want.y)
        _agree(got.u, want.u)
        _agree(got.x_end, want.x_end)

    names = tuple(kwargs) if how in RESIZED else (arg,)
    _check_rule(calls, names, compare, how in SPOILT and how not in RESIZED)


@KERNELS
@given(problem=problems, arg=st.sampled_from(["inputs", "targets", "noise", "start_codes"]),
       how=st.sampled_from(BENIGN + SPOILT), sq=st.booleans())
def test_batches_and_gradients_name_the_argument_or_equal_the_reference(problem, arg, how, sq):
    CASES["gradient"] += 1
    params, batch, reg = random_problem(**problem)
    spec = problem["spec"]
    fields = {"inputs": batch.inputs, "targets": batch.targets, "noise": batch.noise,
              "start_codes": batch.start_codes}
    if fields[arg] is None:
        return
    if arg == "targets" and spec.readout == "place-cells" and how in ("int64", "bool"):
        return                                    # no longer distributions: refused, as tested elsewhere
    fields[arg] = _alter(fields[arg], how, np.random.default_rng(problem["seed"]))
    outcome, made = _outcome(lambda: Batch(**fields))
    if outcome == "error":                        # Batch is where every backend's arrays are checked
        assert how in SPOILT and any(n in str(made) for n in (tuple(fields) if how in RESIZED else (arg,))), made
        return
    assert how in BENIGN or how in RESIZED, f"Batch accepted {how} {arg}"
    calls = {name: (lambda be=be: be.gradient(params, made, reg, spec=spec, sq_grad=sq))
             for name, be in BACKENDS.items()}

    def compare(got, want):
        assert got[0].keys() == want[0].keys()
        for key in want[0]:
            assert math.isclose(got[0][key], want[0][key], rel_tol=RTOL, abs_tol=ATOL), key
        for g, w in zip(got[1:], want[1:]):
            _agree(g, w)

    _check_rule(calls, (arg, "start_codes", "targets", "noise", "inputs", "shape"), compare, False)


@KERNELS
@given(problem=problems, arg=st.sampled_from(["u", "y", "v", "mu", "lam"]),
       how=st.sampled_from(BENIGN + SPOILT), value=st.sampled_from([-1.0, math.nan, math.inf, 1e308, 0.0, "0.1"]))
def test_gn_products_name_the_argument_or_equal_the_reference(problem, arg, how, value):
    CASES["gn_product"] += 1
    params, batch, reg = random_problem(**problem)
    spec = problem["spec"]
    rng = np.random.default_rng(problem["seed"])
    state = REFERENCE.forward(params, batch.inputs, batch.noise, spec=spec, start_codes=batch.start_codes)
    u, y, v, mu = state.u, state.y, rng.standard_normal(params.flat.size), 0.1
    names = (arg,)
    spoilt = how in SPOILT
    if arg == "u":
        u = _alter(u, how, rng)
        names = ("state", "u")
    elif arg == "y":
        y = _alter(y, how, rng)
        names = ("state", "y")
        spoilt &= spec.readout == "place-cells"    # y is read only there
    elif arg == "v":
        v = _alter(v, how, rng)
    elif arg == "mu":
        mu, spoilt = value, not (isinstance(value, float) and 0 <= value < math.inf)
    else:                                         # a Regularization weight: refused when it is made
        outcome, made = _outcome(lambda: Regularization(lam_l2=value, lam_fr=0.1, lam_rec=0.01))
        ok = isinstance(value, float) and 0 <= value < math.inf or value == "0.1"
        assert (outcome == "ok") == ok and (ok or "lam_l2" in str(made)), made
        if outcome == "error":
            return
        reg, names, spoilt = made, ("lam_l2",), False
    if arg in ("u", "y") and how in ("list",):
        return                                    # a state holds arrays; lists are not a state
    st_ = ForwardState(x=None, u=u, y=y, x_end=state.x_end)
    calls = {name: (lambda be=be: be.gn_product(params, batch, st_, v, reg, mu=mu, spec=spec))
             for name, be in BACKENDS.items()}
    _check_rule(calls, names, _agree, spoilt)


@SETTINGS
@given(sizes=st.tuples(*(st.integers(0, 4),) * 4), block=st.sampled_from(["Wrec", "Win", "b", "Wout", "Wenc"]),
       how=st.sampled_from(BENIGN + SPOILT + ("huge",)), seed=st.integers(0, 2**32 - 1))
def test_params_names_the_block_or_holds_its_values(sizes, block, how, seed):
    CASES["Params"] += 1
    n, n_in, n_out, n_code = sizes
    rng = np.random.default_rng(seed)
    blocks = {"Wrec": rng.standard_normal((n, n)), "Win": rng.standard_normal((n, n_in)),
              "b": rng.standard_normal(n), "Wout": rng.standard_normal((n_out, n)),
              "Wenc": rng.standard_normal((n, n_code)) if n_code else None}
    if blocks[block] is None:
        return
    if how == "huge":
        blocks[block] = np.full_like(blocks[block], 1e308)
    elif blocks[block].size:
        blocks[block] = _alter(blocks[block], how, rng)
    outcome, made = _outcome(lambda: Params(**blocks))
    if 0 in (n, n_in, n_out):
        assert outcome == "error" and any(k in str(made) for k in ("n_units", "n_in", "n_out", *blocks)), made
        return
    if outcome == "error":
        assert how in SPOILT and any(k in str(made) for k in blocks), made
        return
    assert how not in SPOILT or how in RESIZED and block in ("Win", "Wout", "Wenc"), how
    for name, want in blocks.items():             # an axis+-1 of Win, Wout, Wenc is another size
        if want is not None:
            np.testing.assert_array_equal(getattr(made, name), np.asarray(want, dtype=np.float64))


sizes = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10**7),
                  st.sampled_from([1e300, 1e-300, MIN_SIZE, MAX_SIZE, 0.0, -0.0, "2", None, True]))


@SETTINGS
@given(name=st.sampled_from(ARENA_NAMES + ("pentagon", 3)), size=sizes)
def test_make_arena_names_the_size_or_has_its_area(name, size):
    CASES["make_arena"] += 1
    outcome, made = _outcome(lambda: make_arena(name, size))
    if name not in ARENA_NAMES:
        assert outcome == "error" and "arena" in str(made)
        return
    if size is None:
        size = 2.0
    valid = isinstance(size, (int, float)) and not isinstance(size, bool) and MIN_SIZE <= size <= MAX_SIZE
    assert (outcome == "ok") == valid, (size, made)
    if valid:
        assert math.isclose(made.area, size**2, rel_tol=1e-9)
    else:
        assert "size" in str(made)


coordinates = st.one_of(st.floats(-1e6, 1e6), st.floats(allow_nan=True, allow_infinity=True),
                        st.sampled_from([1e300, -1e300, 1e-300, "a", None, 1j]))


@SETTINGS
@given(vertices=st.lists(st.tuples(coordinates, coordinates), min_size=0, max_size=7))
def test_polygon_names_the_vertices_or_is_a_valid_arena(vertices):
    CASES["Polygon"] += 1
    outcome, made = _outcome(lambda: Polygon(vertices))
    if outcome == "error":
        assert "vertices" in str(made), made
        return
    v = np.asarray(vertices, dtype=np.float64)
    assert np.isfinite(v).all() and MIN_SIZE / 2 <= np.abs(v).max() <= MAX_SIZE
    assert math.isfinite(made.area) and made.area > 0 and made.inradius > 0
    assert made.contains(np.zeros(2))


@SETTINGS
@given(threads=st.one_of(st.integers(-3, 2 * MAX_THREADS), st.sampled_from([40000, 2**63, 2.0, True, "2", None])),
       backend=st.sampled_from(sorted(BACKENDS)))
def test_thread_counts_are_capped_on_every_backend(threads, backend):
    CASES["threads"] += 1
    outcome, made = _outcome(lambda: get_backend(backend, threads=threads))
    ok = threads is None or (type(threads) is int and 1 <= threads <= MAX_THREADS
                             and (backend != "numba" or threads <= NUMBA_LIMIT))
    assert (outcome == "ok") == ok, (threads, made)
    if ok:
        assert threads is None or made.threads == threads
    else:
        assert "threads must be an integer in 1.." in str(made), made


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_train_refuses_too_many_threads_before_making_the_run(backend, tmp_path, capsys):
    from gridcore.cli import train as train_cli
    out = tmp_path / "run"
    argv = ["--preset", "quick", "--iterations", "1", "--n-trials", "4", "--curvature-trials", "4", "--n-steps", "5",
            "--n-units", "8", "--backend", backend, "--threads", "40000", "--out", str(out)]
    assert train_cli.main(argv) == 2 and not out.exists()
    assert "threads must be an integer in 1.." in capsys.readouterr().err


def test_the_thread_cap_is_the_c_cores():
    c = pytest.importorskip("gridcore.backends.c.ccore")
    assert MAX_THREADS == c.lib.GRC_MAX_THREADS


@pytest.mark.parametrize("backend", ["c", "numpy"])
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n_agents=st.integers(1, 4), source=st.sampled_from(["x", "u", "y"]))
def test_stepper_inputs_that_alias_its_state_equal_a_copy(backend, seed, n_agents, source):
    from gridcore.sim.stepper import Stepper
    if backend == "c" and "c" not in FAST:
        pytest.skip("the C core is not built")
    CASES["Stepper"] += 1
    rng = np.random.default_rng(seed)
    n = 4
    params = Params(rng.standard_normal((n, n)), rng.standard_normal((n, n)), rng.standard_normal(n),
                    rng.standard_normal((n, n)))         # Nin = Nout = N: x, u, y fit the inputs
    spec = ModelSpec(readout="place-cells", n_place_cells=n)
    a, b = (Stepper(params, spec, backend=backend) for _ in range(2))
    for s in (a, b):
        s.reset(n_agents=n_agents)
    first = rng.standard_normal((n_agents, n))
    a.step(first)
    b.step(first)
    got = a.step(getattr(a, source))              # the agents' own state as inputs
    want = b.step(getattr(b, source).copy())
    np.testing.assert_array_equal(got, want)


def test_zz_report_the_cases_tried():
    # runs last in this file (pytest keeps file order): the count for the closing note
    examples = sum(v for k, v in CASES.items() if k not in ("backend calls", "errors named", "results equal"))
    print(f"\nproperty cases tried: {dict(CASES)}, total examples {examples}")
    assert sum(CASES.values()) > 0
