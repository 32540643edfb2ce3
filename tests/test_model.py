"""The model layer: ModelSpec, ParamLayout, parameters (flat view, initialisation, files), Batch."""

import numpy as np
import pytest

from gridcore import PAPER, ModelSpec, ParamLayout, Params, init_params, param_count
from gridcore.model.batch import Batch


def test_flat_round_trip_and_layout():
    rng = np.random.default_rng(0)
    w = [rng.standard_normal(s) for s in ((4, 4), (4, 3), (4,), (2, 4))]
    p = Params(*w)
    assert p.flat.shape == (param_count(4, 3, 2),) == (4 * 4 + 4 * 3 + 4 + 2 * 4,)
    np.testing.assert_array_equal(p.flat, np.concatenate([a.ravel() for a in w]))
    q = Params.from_flat(p.flat, 4, 3, 2)
    assert q == p and q.shape == (4, 3, 2)
    for name, a in zip(("Wrec", "Win", "b", "Wout"), w):
        np.testing.assert_array_equal(getattr(q, name), a)


def test_params_are_read_only_and_from_flat_copies():
    vec = np.arange(param_count(3, 2, 2), dtype=float)
    p = Params.from_flat(vec, 3, 2, 2)
    vec[0] = 99.0
    assert p.Wrec[0, 0] == 0.0
    with pytest.raises(ValueError):
        p.Wrec[0, 0] = 1.0


@pytest.mark.parametrize("n", [3, 50, 100])
def test_orthogonal_init(n):
    p = init_params(n, 2, seed=1)
    np.testing.assert_allclose(p.Wrec @ p.Wrec.T, np.eye(n), atol=1e-12)
    assert np.all(p.b == 0) and np.all(p.Wout == 0)


def test_gaussian_init_variance_and_input_weights():
    n = 400
    p = init_params(n, 2, seed=2, rec_init="gaussian")
    assert p.Wrec.var() == pytest.approx(1.5 ** 2 / n, rel=0.02)
    q = init_params(n, 4, seed=3)
    assert q.Win.var() == pytest.approx(1 / 4, rel=0.1)


def test_uniform_init_is_pytorchs_rnn_default():
    n = 400
    p = init_params(n, 2, seed=4, rec_init="uniform")
    bound = 1 / np.sqrt(n)
    assert np.abs(p.Wrec).max() <= bound and np.abs(p.Wrec).max() > 0.99 * bound
    assert p.Wrec.var() == pytest.approx(bound ** 2 / 3, rel=0.02)
    # circular law: spectral radius sqrt(n var) = 1/sqrt(3) (0.61 at n = 400: finite size)
    assert np.abs(np.linalg.eigvals(p.Wrec)).max() == pytest.approx(1 / np.sqrt(3), rel=0.1)


def test_init_is_seeded():
    assert init_params(10, 2, seed=5) == init_params(10, 2, seed=5)
    assert init_params(10, 2, seed=5) != init_params(10, 2, seed=6)


def test_unknown_init_lists_choices():
    with pytest.raises(ValueError, match="'orthogonal', 'gaussian', 'uniform'"):
        init_params(10, 2, seed=0, rec_init="xavier")


def test_save_load(tmp_path):
    p = init_params(7, 3, seed=0, rec_init="gaussian")
    p.save(tmp_path / "p.npz")
    assert Params.load(tmp_path / "p.npz") == p
    assert Params.load(tmp_path / "p.npz", n_units=7, n_in=3) == p
    assert not list(tmp_path.glob(".tmp-*"))  # the temporary file was renamed


def test_load_refuses_other_shape(tmp_path):
    init_params(7, 3, seed=0).save(tmp_path / "p.npz")
    with pytest.raises(ValueError, match=r"\(n_units, n_in, n_out\) = \(7, 3, 2\), expected \(100"):
        Params.load(tmp_path / "p.npz", n_units=100)


def test_load_refuses_wrong_keys_and_shapes(tmp_path):
    np.savez(tmp_path / "keys.npz", Wrec=np.eye(3), Win=np.ones((3, 2)), bias=np.zeros(3), Wout=np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"missing \['b'\], unexpected \['bias'\]"):
        Params.load(tmp_path / "keys.npz")
    np.savez(tmp_path / "shape.npz", Wrec=np.eye(3), Win=np.ones((4, 2)), b=np.zeros(3), Wout=np.ones((2, 3)))
    with pytest.raises(ValueError, match="not a valid parameter file: Win must have shape"):
        Params.load(tmp_path / "shape.npz")
    np.savez(tmp_path / "nan.npz", Wrec=np.eye(3) * np.nan, Win=np.ones((3, 2)), b=np.zeros(3), Wout=np.ones((2, 3)))
    with pytest.raises(ValueError, match="Wrec contains NaN"):
        Params.load(tmp_path / "nan.npz")


def test_load_refuses_garbage(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="unreadable .npz"):
        Params.load(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError):
        Params.load(tmp_path / "missing.npz")


@pytest.mark.parametrize("fmt, message", [
    (7, r"field 'format' = 7 is not a parameter file format this version reads; allowed: 1, 2"),
    (2.0, r"field 'format' = 2\.0 is not"), ("2", r"field 'format' = '2' is not"),
    ([1, 2], r"field 'format' = \[1, 2\] is not"), (None, r"format-2 parameter file must hold the model spec")])
def test_load_checks_the_format_field(tmp_path, fmt, message):
    init_params(3, 2, seed=0).save(tmp_path / "p.npz")
    data = dict(np.load(tmp_path / "p.npz"))
    if fmt is None:                                   # format 2 without its spec
        del data["spec"]
    else:
        data["format"] = np.array(fmt)
    np.savez(tmp_path / "bad.npz", **data)
    with pytest.raises(ValueError, match="bad.npz: .*" + message):
        Params.load(tmp_path / "bad.npz")


def test_save_into_a_missing_folder_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"the folder {tmp_path / 'nowhere'} does not exist"):
        init_params(3, 2, seed=0).save(tmp_path / "nowhere" / "p.npz")
    assert not list(tmp_path.rglob(".tmp-*"))


def test_from_flat_wrong_length():
    with pytest.raises(ValueError, match=r"vec must have shape \(24,\), got \(5,\)"):
        Params.from_flat(np.zeros(5), 3, 2, 2)


def test_non_square_wrec():
    with pytest.raises(ValueError, match="Wrec must be square"):
        Params(np.zeros((3, 4)), np.zeros((3, 2)), np.zeros(3), np.zeros((2, 3)))


def test_batch_subset_is_a_view():
    b = Batch(np.ones((5, 4, 2)), np.zeros((5, 4, 2)), np.zeros((5, 4, 3)))
    s = b.subset(2)
    assert s.n_trials == 2 and s.n_steps == 4 and np.shares_memory(s.inputs, b.inputs)
    with pytest.raises(ValueError, match="n_trials must be <= 5"):
        b.subset(6)


# ---------------------------------------------------------------- ModelSpec and ParamLayout


def test_spec_defaults_are_the_papers():
    spec = ModelSpec()
    assert (spec.alpha, spec.nonlinearity, spec.readout, spec.initial_state) == (0.1, "tanh", "xy", "zero")
    assert spec.n_out == 2 and spec == PAPER


@pytest.mark.parametrize("field,value,allowed", [("nonlinearity", "sigmoid", "'tanh'"),
                                                 ("readout", "heading", "'xy'"),
                                                 ("initial_state", "learned-ish", "'zero'")])
def test_spec_unknown_values_list_the_allowed_ones(field, value, allowed):
    with pytest.raises(ValueError, match=f"unknown {field} {value!r}; allowed: {allowed}"):
        ModelSpec(**{field: value})


@pytest.mark.parametrize("alpha", [0.0, -0.5, 1.0001, float("nan"), float("inf")])
def test_spec_alpha_range(alpha):
    with pytest.raises(ValueError, match=r"alpha \(dt/tau\) must be in \(0, 1\]"):
        ModelSpec(alpha=alpha)
    with pytest.raises(TypeError, match="alpha must be a real number"):
        ModelSpec(alpha="fast")


def test_spec_is_frozen_and_round_trips():
    spec = ModelSpec(alpha=1)
    assert isinstance(spec.alpha, float)
    with pytest.raises(AttributeError):
        spec.alpha = 0.5
    assert ModelSpec.from_json(spec.to_json()) == spec == ModelSpec.from_dict(spec.to_dict())
    with pytest.raises(ValueError, match=r"model: unknown model settings \['tau'\]; allowed: alpha, nonlinearity"):
        ModelSpec.from_dict({"tau": 10}, where="model")
    with pytest.raises(ValueError, match="unreadable model spec"):
        ModelSpec.from_json("{not json")


def test_params_files_record_and_check_the_spec(tmp_path):
    p = init_params(5, 2, seed=0)
    p.save(tmp_path / "p.npz", ModelSpec(alpha=0.5))
    assert Params.load_with_spec(tmp_path / "p.npz") == (p, ModelSpec(alpha=0.5))
    assert Params.load(tmp_path / "p.npz", ModelSpec(alpha=0.5)) == p
    with pytest.raises(ValueError, match=r"p.npz has another model spec: "
                                         r"alpha 0.5 \(expected 0.1\)"):
        Params.load(tmp_path / "p.npz", ModelSpec())


def test_params_files_without_a_spec_load_under_any(tmp_path):
    # Format 1 (before the spec was stored): accepted, checked only against the spec's outputs.
    p = init_params(5, 2, seed=0)
    np.savez(tmp_path / "old.npz", format=1, Wrec=p.Wrec, Win=p.Win, b=p.b, Wout=p.Wout)
    assert Params.load_with_spec(tmp_path / "old.npz") == (p, None)
    assert Params.load(tmp_path / "old.npz", ModelSpec(alpha=0.3)) == p


def test_params_must_fit_the_spec_outputs(tmp_path):
    p = Params(np.eye(3), np.ones((3, 2)), np.zeros(3), np.ones((4, 3)))
    with pytest.raises(ValueError, match="n_out = 4 outputs but the spec's readout 'xy' has 2"):
        p.save(tmp_path / "p.npz")
    with pytest.raises(TypeError, match="spec must be a gridcore.ModelSpec"):
        init_params(3, 2, seed=0, spec="tanh")


def test_layout_blocks_and_offsets():
    layout = ParamLayout.for_spec(PAPER, 4, 3)
    assert layout.names == ("Wrec", "Win", "b", "Wout")
    assert [(b.shape, b.offset) for b in layout.blocks] == [((4, 4), 0), ((4, 3), 16), ((4,), 28), ((2, 4), 32)]
    assert layout.size == param_count(4, 3, 2) == 40
    flat = np.arange(40.0)
    views = layout.views(flat)
    np.testing.assert_array_equal(layout.pack(views), flat)
    np.testing.assert_array_equal(views["b"], [28, 29, 30, 31])
    np.testing.assert_array_equal(layout.fill({"b": 2.0})[27:33], [0, 2, 2, 2, 2, 0])
    with pytest.raises(ValueError, match=r"blocks missing from the parameters: \['Wout'\]"):
        layout.pack({k: v for k, v in views.items() if k != "Wout"})
    assert init_params(4, 3, seed=0).layout == layout


def test_huge_finite_params_are_accepted_and_nan_is_not():
    big = np.full((3, 3), 1e308)            # their sum overflows; every entry is finite
    assert Params(Wrec=big, Win=np.zeros((3, 2)), b=np.zeros(3), Wout=np.zeros((2, 3))).Wrec[0, 0] == 1e308
    bad = big.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="Wrec contains NaN or infinite"):
        Params(Wrec=bad, Win=np.zeros((3, 2)), b=np.zeros(3), Wout=np.zeros((2, 3)))
