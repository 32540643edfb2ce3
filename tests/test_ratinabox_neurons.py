"""A gridcore network running online in RatInABox (gridcore.sim.ratinabox.network_neurons):
the Agent's moves in the network's units and encoding, the rates equal to the Stepper's,
and RatInABox's own plots of the units."""

import numpy as np
import pytest

pytest.importorskip("ratinabox")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
from ratinabox.Agent import Agent  # noqa: E402
from ratinabox.Environment import Environment  # noqa: E402

from gridcore import ModelSpec, PlaceCells, Stepper, init_params  # noqa: E402
from gridcore.sim.ratinabox import network_neurons, run_neurons  # noqa: E402
from gridcore.sim.trajectories import encode  # noqa: E402
from gridcore.train.rundir import load_run  # noqa: E402

SQUARE = Path(__file__).resolve().parent.parent / "docs" / "results" / "square"


def _agent(seed=0):
    np.random.seed(seed)            # RatInABox draws from NumPy's global generator
    agent = Agent(Environment(params={"scale": 1.0}), params={"dt": 0.05, "speed_mean": 0.3})
    agent.pos = np.array([0.5, 0.5])                # the arena centre: where x_0 = 0 starts
    return agent


def _inputs_from_history(agent, start, units_per_metre, encoding):
    pos = np.vstack([start, np.array(agent.history["pos"])]) * units_per_metre
    move = np.diff(pos, axis=0)
    return encode(np.hypot(move[:, 0], move[:, 1]), np.arctan2(move[:, 1], move[:, 0]), encoding)


@pytest.mark.parametrize("encoding", ["speed-angle", "velocity", "speed-cos-sin"])
def test_rates_follow_the_agent(encoding):
    n_in = 3 if encoding == "speed-cos-sin" else 2
    params = init_params(16, n_in, seed=1, rec_init="gaussian")
    params = params.with_flat(params.flat + 0.1 * np.random.default_rng(2).standard_normal(params.flat.size))
    agent = _agent()
    neurons = network_neurons(agent, Stepper(params), encoding=encoding, arena_size=2.0)
    assert neurons.n == 16 and neurons.units_per_metre == 2.0
    np.testing.assert_allclose(neurons.estimate, [0.5, 0.5])
    for _ in range(60):
        agent.update()
        neurons.update()
    rates = np.array(neurons.history["firingrate"])
    check = Stepper(params, backend="numpy")
    check.reset()
    want = []
    for inputs in _inputs_from_history(agent, [0.5, 0.5], 2.0, encoding):
        check.step(inputs)
        want.append(check.u.copy())
    np.testing.assert_allclose(rates, want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(neurons.estimate, check.position / 2.0 + 0.5, atol=1e-12)
    fig, _ = neurons.plot_rate_map(chosen_neurons="3", method="history")
    fig2, _ = neurons.plot_rate_timeseries()
    plt.close("all")
    with pytest.raises(ValueError, match="path"):
        neurons.get_state(evaluate_at="all")


def test_encoded_start_from_the_agent_position():
    spec = ModelSpec(readout="place-cells", initial_state="encoded", n_place_cells=16)
    cells = PlaceCells("square", n_cells=16, sigma=0.3, layout="lattice")
    params = init_params(12, 2, seed=0, spec=spec)
    agent = _agent()
    agent.pos = np.array([0.8, 0.25])
    neurons = network_neurons(agent, Stepper(params, spec, place_cells=cells))
    np.testing.assert_allclose(neurons.stepper.x, params.Wenc @ cells.encode([0.6, -0.5]), atol=1e-14)
    agent.update()
    neurons.update()
    assert neurons.estimate.shape == (2,) and neurons.firingrate.shape == (12,)


def test_a_trained_run_in_ratinabox():
    agent = _agent(3)
    neurons = run_neurons(agent, load_run(SQUARE))
    assert neurons.n == 100
    for _ in range(100):
        agent.update()
        neurons.update()
    # the paper's network tracks the agent: within a fifth of the 1 m box after 100 steps
    assert np.linalg.norm(neurons.estimate - agent.pos) < 0.2


def test_bad_arguments():
    agent = _agent()
    params = init_params(8, 2, seed=0)
    with pytest.raises(TypeError, match="stepper"):
        network_neurons(agent, params)
    with pytest.raises(ValueError, match="encoding"):
        network_neurons(agent, Stepper(params), encoding="speed-cos-sin")
    with pytest.raises(ValueError, match="units_per_metre"):
        network_neurons(agent, Stepper(params), units_per_metre=-1.0)
