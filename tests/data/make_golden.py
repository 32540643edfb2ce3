"""Regenerate ``tests/data/golden.npz``: the NumPy reference's outputs on small fixed problems.

Run from the repository root: ``python tests/data/make_golden.py``. Do so only
when a change to the reference is intended (a new model variant adds cases;
existing cases must come out the same, or the change says why they moved).
Each case stores its own inputs (parameters, batch, regularisation, the GN
vector), so the file does not depend on how the tests draw random problems.
"""

import itertools
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from problems import SPECS, random_problem, spec_id  # noqa: E402

from gridcore.backends import reference  # noqa: E402

SIZES = [(3, 2, 2, 4), (7, 3, 3, 9), (12, 2, 5, 6)]   # (N, Nin, M, T)
TERMS = ("E", "R_L2", "R_FR", "R_rec", "loss")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.npz")


def case(spec, sizes, noise):
    """The arrays of one case: inputs under ``in_*``, reference outputs under ``out_*``."""
    n, n_in, m, t = sizes
    params, batch, reg = random_problem(n, n_in, None, m, t, seed=n * 100 + t, noise=noise, spec=spec)
    v = np.random.default_rng(n).standard_normal(params.flat.size)
    st = reference.forward(params, batch.inputs, batch.noise, spec=spec, start_codes=batch.start_codes)
    terms, grad, sq = reference.gradient(params, batch, reg, spec=spec, sq_grad=True)
    gv = reference.gn_product(params, batch, st, v, reg, mu=0.3, spec=spec)
    return {
        "in_spec": np.array(spec.to_json()), "in_shape": np.array(params.shape + (params.n_code,)),
        "in_theta": params.flat, "in_inputs": batch.inputs, "in_targets": batch.targets,
        "in_noise": batch.noise if noise else np.zeros(0),
        "in_codes": np.zeros(0) if batch.start_codes is None else batch.start_codes,
        "in_reg": np.array([reg.lam_l2, reg.lam_fr, reg.lam_rec]),
        "in_v": v, "in_mu": np.array(0.3),
        "out_u": st.u, "out_y": st.y, "out_x_end": st.x_end,
        "out_terms": np.array([terms[k] for k in TERMS]),
        "out_grad": grad, "out_sq": sq, "out_gv": gv,
    }


def main():
    arrays = {}
    for spec, sizes, noise in itertools.product(SPECS, SIZES, (True, False)):
        name = f"{spec_id(spec)}_N{sizes[0]}_{'noise' if noise else 'quiet'}"
        arrays.update({f"{name}/{k}": a for k, a in case(spec, sizes, noise).items()})
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT}: {len(arrays) // 17} cases")


if __name__ == "__main__":
    main()
