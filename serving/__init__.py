"""TensorFlow-free cluster assignment (ONNX Runtime) and the HTTP server.

Installed as ``keras_deepclust.serving`` (the folder is ``serving/`` in the
repository). Nothing here may import Keras or TensorFlow: inference-only
deployments install ``keras-deepclust[serving]``, which pulls numpy and onnxruntime
only. The assigner and server arrive with the export issue.
"""
