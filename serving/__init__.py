"""TensorFlow-free cluster assignment with ONNX Runtime.

Installed as ``keras_deepclust.serving`` (the folder is ``serving/`` in the
repository). Nothing here may import Keras or TensorFlow: inference-only
deployments install ``keras-deepclust[serving]``, which pulls numpy and onnxruntime
only.
"""

from keras_deepclust.serving.assigner import ClusterAssigner

__all__ = ["ClusterAssigner"]
