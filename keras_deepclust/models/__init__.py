"""Clustering models. Each registers a CLI method name (see `list_methods`)."""

from keras_deepclust.models.base import ClusteringModel, get_method, list_methods, register_method
from keras_deepclust.models.dec import DCEC, DEC, IDEC, DECConv, DeepEmbeddedClustering

__all__ = [
    "ClusteringModel",
    "DCEC",
    "DEC",
    "DECConv",
    "DeepEmbeddedClustering",
    "IDEC",
    "get_method",
    "list_methods",
    "register_method",
]
