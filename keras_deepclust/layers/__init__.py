"""Keras layers of keras-deepclust (each registered serializable)."""

from keras_deepclust.layers.clustering import ClusteringLayer
from keras_deepclust.layers.heads import HardAssignment

__all__ = ["ClusteringLayer", "HardAssignment"]
