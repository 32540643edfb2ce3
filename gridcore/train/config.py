"""Run configuration: defaults, presets and validation of the settings of a training run.

A configuration is a dict of JSON values (it is written to ``config.json``);
``model`` holds the :class:`ModelSpec` fields.
"""

import copy
from dataclasses import asdict

from gridcore.model.params import REC_INITS
from gridcore.model.spec import PAPER, ModelSpec
from gridcore.sim.arenas import ARENA_NAMES
from gridcore.sim.trajectories import ENCODINGS, MOTION_DEFAULTS
from gridcore.train.hf import AdamSettings, HFSettings
from gridcore.util.checks import check_choice, check_nonneg_float, check_positive_int

OPTIMIZERS = ("hf", "adam")
# The paper's initialisation per arena (Sec. 2.3); the circle is ours.
PAPER_REC_INIT = {"square": "orthogonal", "triangle": "orthogonal", "hexagon": "gaussian",
                  "circle": "orthogonal"}

DEFAULTS = {
    "arena": "square",
    "arena_size": 2.0,           # arena units: side of the equal-area square
    "encoding": "speed-angle",   # the paper's inputs: speed and heading angle
    "motion": {},                # overrides of trajectories.MOTION_DEFAULTS
    "n_units": 100,              # N
    "n_trials": 500,             # M, trials per minibatch (fresh each iteration)
    "n_steps": 500,              # T, Euler steps per trial
    "curvature_trials": 100,     # trials of the minibatch used for G v (HF)
    "model": PAPER.to_dict(),    # the ModelSpec: alpha = dt / tau, nonlinearity, readout, x_0
    "noise_std": 0.1,            # sd of xi_t, per unit per step
    "rec_init": None,            # None: the paper's choice for the arena
    "optimizer": "hf",
    "iterations": 1000,
    "seed": 0,
    "backend": "auto",
    "threads": None,             # None: all cores
    "l2": True,                  # R_L2 on, with the paper's schedule
    "l2_decay": 0.99,            # lam_L2 *= l2_decay per iteration (our choice; App. E is vague)
    "l2_min": 1e-6,              # floor of lam_L2
    "metabolic": True,           # R_FR on
    "fr_init_ratio": 0.1,        # lam_FR R_FR starts at this fraction of E (App. E: E/10)
    "fr_max_ratio": 1.0 / 3.0,   # and is kept at most this fraction of E (App. E: E/3)
    "hf": asdict(HFSettings()),
    "adam": asdict(AdamSettings()),
    "eval_trials": 200,          # held-out trials for the normalised error
    "eval_every": 10,            # iterations between held-out evaluations (0: only at the end)
    "checkpoint_every": 10,
    "snapshot_every": 0,         # also keep parameters every K iterations (0: off)
    "snapshot_at": [],           # and at these iterations
}

PRESETS = {
    # The README default: minutes on 2 cores, already clearly better than a constant guess.
    "quick": {"n_units": 64, "n_trials": 100, "n_steps": 200, "curvature_trials": 50,
              "iterations": 150, "eval_every": 10, "snapshot_at": [0, 10, 50]},
    # The paper: N=100, M=500, T=500, noise and metabolic cost on, 90% zero speed.
    "paper": {"n_units": 100, "n_trials": 500, "n_steps": 500, "iterations": 1000,
              "snapshot_at": [0, 10, 20, 50, 100, 200, 500]},
}


def make_config(preset=None, **overrides):
    """A full, validated run configuration: defaults, then a preset, then overrides.

    Unknown keys raise ValueError listing the allowed ones.
    """
    cfg = copy.deepcopy(DEFAULTS)
    if preset is not None:
        check_choice("preset", preset, tuple(PRESETS))
        cfg.update(copy.deepcopy(PRESETS[preset]))
    for key, value in overrides.items():
        if key not in DEFAULTS:
            raise ValueError(f"unknown setting {key!r}; allowed: {', '.join(sorted(DEFAULTS))}")
        if key in ("hf", "adam", "motion", "model"):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return validate_config(cfg)


def validate_config(cfg):
    """Check every setting; fill ``rec_init`` from the arena. Returns the config.

    A configuration written before the model spec existed (a top-level
    ``alpha``) is read as the paper's model with that ``alpha``.
    """
    if "alpha" in cfg and "model" not in cfg:
        cfg = {**{k: v for k, v in cfg.items() if k != "alpha"}, "model": {**PAPER.to_dict(), "alpha": cfg["alpha"]}}
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; allowed: {', '.join(sorted(DEFAULTS))}")
    check_choice("arena", cfg["arena"], ARENA_NAMES)
    check_choice("encoding", cfg["encoding"], tuple(ENCODINGS))
    check_choice("optimizer", cfg["optimizer"], OPTIMIZERS)
    for key in ("n_units", "n_trials", "n_steps", "curvature_trials", "iterations", "eval_trials"):
        check_positive_int(key, cfg[key])
    for key in ("noise_std", "l2_decay", "l2_min", "fr_init_ratio", "fr_max_ratio", "arena_size"):
        check_nonneg_float(key, cfg[key])
    for key in ("eval_every", "checkpoint_every", "snapshot_every", "seed"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], int) or cfg[key] < 0:
            raise ValueError(f"{key} must be an integer >= 0, got {cfg[key]!r}")
    if cfg["curvature_trials"] > cfg["n_trials"]:
        raise ValueError(f"curvature_trials must be <= n_trials = {cfg['n_trials']}, "
                         f"got {cfg['curvature_trials']}")
    unknown = set(cfg["motion"]) - set(MOTION_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown motion settings {sorted(unknown)}; allowed: {', '.join(MOTION_DEFAULTS)}")
    if cfg["rec_init"] is None:
        cfg["rec_init"] = PAPER_REC_INIT[cfg["arena"]]
    check_choice("rec_init", cfg["rec_init"], REC_INITS)
    cfg["model"] = model_spec(cfg).to_dict()
    HFSettings(**cfg["hf"])
    AdamSettings(**cfg["adam"])
    return cfg


def model_spec(cfg):
    """The run's :class:`ModelSpec`, from ``cfg["model"]``."""
    return ModelSpec.from_dict(cfg["model"], where="model")
