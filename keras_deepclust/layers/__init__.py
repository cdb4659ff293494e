"""Keras layers of keras-deepclust (each registered serializable)."""

from keras_deepclust.layers.augmentation import ImageAugmentation
from keras_deepclust.layers.clustering import ClusteringLayer
from keras_deepclust.layers.heads import (
    GaussianMixturePosterior,
    HardAssignment,
    NearestCentroidSoftmax,
    NormalizedSoftmax,
)
from keras_deepclust.layers.mixture import MixtureOfAutoencoders
from keras_deepclust.layers.neighbors import NeighborInterpolation
from keras_deepclust.layers.preprocessing import SCALINGS, InputScaling

__all__ = ["ClusteringLayer", "GaussianMixturePosterior", "HardAssignment", "ImageAugmentation",
           "InputScaling",
           "MixtureOfAutoencoders", "NearestCentroidSoftmax", "NeighborInterpolation",
           "NormalizedSoftmax", "SCALINGS"]
