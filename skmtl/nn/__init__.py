"""Pure-PyTorch multi-task networks: tensors in, logits out.

Nothing here imports pandas or scikit-learn, so the networks can be used and
tested on their own. Every network takes one :class:`FeatureBatch` (categorical
codes, numbers, bags of codes) and returns the concatenated logits of all
tasks.
"""

from skmtl.nn._base import MultiTaskNetwork
from skmtl.nn._batch import FeatureBatch
from skmtl.nn._cross_stitch import CrossStitch
from skmtl.nn._dcn import DCN, CrossNetwork, SharedBottom
from skmtl.nn._funnel import AITM, ESMM, AdaptiveTransfer, joint_logits
from skmtl.nn._layers import MLP, FeatureInput, StackedLinear, StackedMLP, TaskTowers
from skmtl.nn._mmoe import MMoE
from skmtl.nn._ple import PLE, ExtractionLevel
from skmtl.nn._star import STAR, PartitionedNorm, StarLinear, domain_indicator

__all__ = [
    "AITM",
    "DCN",
    "ESMM",
    "MLP",
    "PLE",
    "STAR",
    "AdaptiveTransfer",
    "CrossNetwork",
    "CrossStitch",
    "ExtractionLevel",
    "FeatureBatch",
    "FeatureInput",
    "MMoE",
    "MultiTaskNetwork",
    "PartitionedNorm",
    "SharedBottom",
    "StackedLinear",
    "StackedMLP",
    "StarLinear",
    "TaskTowers",
    "domain_indicator",
    "joint_logits",
]
