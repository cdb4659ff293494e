"""Keras layers of keras-deepclust (each registered serializable)."""

from keras_deepclust.layers.clustering import ClusteringLayer

__all__ = ["ClusteringLayer"]
