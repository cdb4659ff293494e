"""Exportable inference heads shared by every method's assigner."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_deepclust")
class HardAssignment(keras.layers.Layer):
    """Cluster id of each row of soft assignments: argmax over the last axis, as int32.

    Uses `tf.argmax(..., output_type=tf.int32)` on purpose: `keras.ops.argmax` on the
    TensorFlow backend emits Bitcast/BitwiseAnd ops that ONNX Runtime and builtin
    TFLite cannot run.

    Returns:
        A `(batch,)` int32 tensor.

    Example:

    >>> HardAssignment()(tf.constant([[0.2, 0.8], [0.9, 0.1]])).numpy().tolist()
    [1, 0]
    """

    def call(self, probabilities):
        return tf.argmax(probabilities, axis=-1, output_type=tf.int32)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])

    def compute_output_spec(self, probabilities):
        return keras.KerasTensor(probabilities.shape[:-1], dtype="int32")
