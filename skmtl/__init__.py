"""skmtl: multi-task deep learning for tabular data, the scikit-learn way.

Estimators take a raw pandas DataFrame and a target table with one column per
task, and wrap PyTorch networks: MMoE, PLE/CGC, DCN, Cross-Stitch, the
funnel models ESMM and AITM, the multi-domain STAR, and the Shared-Bottom and
One-gate MoE baselines.
"""

from skmtl._encoder import EncodedFeatures, FeatureEncoder
from skmtl._estimators import (
    AITMEstimator,
    CrossStitchEstimator,
    DCNMultiTask,
    ESMMEstimator,
    MMoEClassifierRegressor,
    PLEEstimator,
    SharedBottomEstimator,
    STAREstimator,
)
from skmtl._persistence import load

__version__ = "0.1.0"

__all__ = [
    "AITMEstimator",
    "CrossStitchEstimator",
    "DCNMultiTask",
    "ESMMEstimator",
    "EncodedFeatures",
    "FeatureEncoder",
    "MMoEClassifierRegressor",
    "PLEEstimator",
    "STAREstimator",
    "SharedBottomEstimator",
    "__version__",
    "load",
]
