"""Clustering models. Each registers a CLI method name (see `list_methods`)."""

from keras_deepclust.models.aec import AEC
from keras_deepclust.models.auto import AutoClustering, fit_auto
from keras_deepclust.models.base import (
    ClusteringModel,
    get_method,
    list_methods,
    method_name,
    register_method,
)
from keras_deepclust.models.dac import DAC
from keras_deepclust.models.damic import DAMIC
from keras_deepclust.models.dec import DCEC, DEC, IDEC, DECConv, DeepEmbeddedClustering
from keras_deepclust.models.imsat import IMSAT
from keras_deepclust.models.n2d import N2D
from keras_deepclust.models.two_stage import (
    AEGMM,
    CAEGMM,
    AEKMeans,
    CAEKMeans,
    TwoStageClustering,
)

__all__ = [
    "AEC",
    "AEGMM",
    "AEKMeans",
    "AutoClustering",
    "CAEGMM",
    "CAEKMeans",
    "TwoStageClustering",
    "ClusteringModel",
    "DAC",
    "DAMIC",
    "DCEC",
    "DEC",
    "DECConv",
    "DeepEmbeddedClustering",
    "IDEC",
    "IMSAT",
    "N2D",
    "fit_auto",
    "get_method",
    "list_methods",
    "method_name",
    "register_method",
]
