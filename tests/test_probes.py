"""Step-response probe on networks built by hand."""

import numpy as np
import pytest

from gridcore.analysis.probes import step_response
from gridcore.backends import get_backend
from gridcore.model.params import Params
from gridcore.model.spec import ALPHA

BACKEND = get_backend("numpy")
G = 0.05      # small input gain: tanh stays in its linear range


def integrator():
    """Velocity inputs: x += alpha (-x + tanh x + G v) ~ x + alpha G v, read out by 1/(alpha G)."""
    eye = np.eye(2)
    return Params(Wrec=eye, Win=G * eye, b=np.zeros(2), Wout=eye / (ALPHA * G))


def heading_guesser():
    """Speed-cos-sin inputs, speed ignored: integrates (cos h, sin h) at a constant speed."""
    win = np.array([[0.0, G, 0.0], [0.0, 0.0, G]])
    return Params(Wrec=np.eye(2), Win=win, b=np.zeros(2), Wout=0.01 * np.eye(2) / (ALPHA * G))


def test_an_integrator_moves_by_the_step_and_rests_still():
    r = step_response(integrator(), BACKEND, "velocity", speeds=(0.03, 0.1), n_headings=16)
    assert r["response"].shape == (2, 16, 2) and r["rest_output"].shape == (16, 2)
    np.testing.assert_allclose(r["gain"], 1.0, atol=0.02)      # tanh's cubic term, slow leak
    assert np.max(np.abs(r["angle_error"])) < 1.0
    np.testing.assert_allclose(r["rest_output"], 0.0, atol=1e-12)
    expected = r["speeds"][:, None, None] * np.stack([np.cos(r["headings"]), np.sin(r["headings"])], -1)
    np.testing.assert_allclose(r["response"], expected, atol=0.02 * r["speeds"].max())


def test_a_network_that_ignores_speed_drifts_along_the_heading():
    r = step_response(heading_guesser(), BACKEND, "speed-cos-sin", n_headings=12, settle=30, after=30)
    s = r["summary"]
    assert max(s["median_gain"]) < 1e-12
    assert s["median_abs_rest_angle_to_heading_deg"] < 1.0
    # 61 steps at 0.01 per step, a little less for the tanh.
    assert 0.55 < s["median_rest_output"] < 0.61


def test_headings_cover_the_circle_and_bad_arguments_are_named():
    r = step_response(integrator(), BACKEND, "velocity", n_headings=4)
    np.testing.assert_allclose(np.rad2deg(r["headings"]), [-135, -45, 45, 135])
    with pytest.raises(ValueError, match="speeds must be a non-empty list of positive"):
        step_response(integrator(), BACKEND, "velocity", speeds=(0.0,))
    with pytest.raises(ValueError, match="n_headings"):
        step_response(integrator(), BACKEND, "velocity", n_headings=0)
    with pytest.raises(ValueError, match="encoding"):
        step_response(integrator(), BACKEND, "polar")
