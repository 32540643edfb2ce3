"""The model layer: what network is trained (:class:`ModelSpec`), its parameters
(:class:`Params`, :class:`ParamLayout`), a minibatch and the objective.
Imports only :mod:`gridcore.util`."""

from gridcore.model.batch import Batch, ForwardState, Regularization, StreamResult
from gridcore.model.layout import ParamLayout
from gridcore.model.noise import CounterNoise
from gridcore.model.params import Params, init_params, param_count
from gridcore.model.spec import ALPHA, PAPER, ModelSpec

__all__ = ["ALPHA", "PAPER", "Batch", "CounterNoise", "ForwardState", "ModelSpec", "ParamLayout", "Params",
           "Regularization", "StreamResult", "init_params", "param_count"]
