"""The NumPy reference against committed golden outputs (``tests/data``), so that a
change which moves the reference itself is caught; the fast cores are tested
against the reference everywhere else."""

import os

import numpy as np
import pytest

from gridcore import Batch, ModelSpec, Params, Regularization
from gridcore.backends import reference

GOLDEN = os.path.join(os.path.dirname(__file__), "data", "golden.npz")


def _cases():
    with np.load(GOLDEN) as f:
        names = sorted({k.split("/")[0] for k in f.files})
        return {name: {k.split("/")[1]: f[k] for k in f.files if k.startswith(name + "/")} for name in names}


CASES = _cases()


def test_golden_covers_every_spec():
    from problems import SPECS
    covered = {str(c["in_spec"]) for c in CASES.values()}
    assert covered == {s.to_json() for s in SPECS}


@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_reproduces_golden(name):
    c = CASES[name]
    spec = ModelSpec.from_json(str(c["in_spec"]))
    params = Params.from_flat(c["in_theta"], *c["in_shape"])
    batch = Batch(c["in_inputs"], c["in_targets"], c["in_noise"] if c["in_noise"].size else None,
                  c["in_codes"] if c["in_codes"].size else None)
    reg = Regularization(*c["in_reg"])
    st = reference.forward(params, batch.inputs, batch.noise, spec=spec, start_codes=batch.start_codes)
    terms, grad, sq = reference.gradient(params, batch, reg, spec=spec, sq_grad=True)
    gv = reference.gn_product(params, batch, st, c["in_v"], reg, mu=float(c["in_mu"]), spec=spec)
    got = {"out_u": st.u, "out_y": st.y, "out_x_end": st.x_end, "out_grad": grad, "out_sq": sq, "out_gv": gv,
           "out_terms": np.array([terms[k] for k in ("E", "R_L2", "R_FR", "R_rec", "loss")])}
    for key, value in got.items():
        np.testing.assert_allclose(value, c[key], rtol=1e-12, atol=1e-14 * np.max(np.abs(c[key])), err_msg=key)
