"""skmtl: multi-task deep learning for tabular data, the scikit-learn way.

Estimators take a raw pandas DataFrame and a target table with one column per
task, and wrap PyTorch networks: MMoE, PLE/CGC, DCN and the Shared-Bottom and
One-gate MoE baselines.
"""

from skmtl._encoder import EncodedFeatures, FeatureEncoder
from skmtl._estimators import (
    DCNMultiTask,
    MMoEClassifierRegressor,
    PLEEstimator,
    SharedBottomEstimator,
)
from skmtl._persistence import load

__version__ = "0.1.0"

__all__ = [
    "DCNMultiTask",
    "EncodedFeatures",
    "FeatureEncoder",
    "MMoEClassifierRegressor",
    "PLEEstimator",
    "SharedBottomEstimator",
    "__version__",
    "load",
]
