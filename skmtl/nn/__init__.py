"""Pure-PyTorch multi-task networks: tensors in, logits out.

Nothing here imports pandas or scikit-learn, so the networks can be used and
tested on their own. Every network takes one :class:`FeatureBatch` (categorical
codes, numbers, bags of codes) and returns the concatenated logits of all
tasks.
"""

from skmtl.nn._base import MultiTaskNetwork
from skmtl.nn._batch import FeatureBatch
from skmtl.nn._dcn import DCN, CrossNetwork, SharedBottom
from skmtl.nn._layers import MLP, FeatureInput, StackedLinear, StackedMLP, TaskTowers
from skmtl.nn._mmoe import MMoE
from skmtl.nn._ple import PLE, ExtractionLevel

__all__ = [
    "DCN",
    "MLP",
    "PLE",
    "CrossNetwork",
    "ExtractionLevel",
    "FeatureBatch",
    "FeatureInput",
    "MMoE",
    "MultiTaskNetwork",
    "SharedBottom",
    "StackedLinear",
    "StackedMLP",
    "TaskTowers",
]
