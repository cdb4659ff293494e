"""ClusterAssigner: cluster assignment with ONNX Runtime, without TensorFlow or Keras."""

from pathlib import Path

import numpy as np

from keras_deepclust._validation import check_array, check_positive_int
from keras_deepclust.serving.metadata import read_metadata


class ClusterAssigner:
    """Assigns clusters with an exported ONNX assigner.

    Takes the raw rows the model was fitted on: the input scaling learnt by `fit` is
    the artifact's first layer. Checks inputs against the artifact's metadata (sample
    shape, numeric dtype, finite values), takes flat rows of an image model
    (`(n, h * w * c)`, row-major as `x.reshape(n, -1)` gives) and any memory order,
    and runs large inputs in batches.

    Args:
        path: the `.onnx` file written by `keras_deepclust.export.export_onnx`; its
            `.metadata.json` must lie beside it.
        batch_size: rows per ONNX Runtime call.
        intra_op_threads: threads inside one operator (None: ONNX Runtime's default).
        inter_op_threads: threads across operators (None: ONNX Runtime's default).
        verify_checksum: refuse a file that changed after export.

    Example:

    ```python
    from keras_deepclust.serving import ClusterAssigner

    assigner = ClusterAssigner("artifacts/clusterer.onnx")
    labels = assigner.predict_labels(x)     # (n,) int32
    probabilities = assigner.predict_proba(x)
    ```
    """

    def __init__(self, path, batch_size=4096, intra_op_threads=None, inter_op_threads=None,
                 verify_checksum=True):
        import onnxruntime

        batch_size = check_positive_int(batch_size, "batch_size")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"No such ONNX file: {self.path}")
        self.metadata = read_metadata(self.path, verify_checksum=verify_checksum)
        if self.metadata["format"] != "onnx":
            raise ValueError(f"{self.path} is a {self.metadata['format']} artifact, not ONNX.")
        options = onnxruntime.SessionOptions()
        if intra_op_threads is not None:
            options.intra_op_num_threads = intra_op_threads
        if inter_op_threads is not None:
            options.inter_op_num_threads = inter_op_threads
        self._session = onnxruntime.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )
        self._output_names = [o.name for o in self._session.get_outputs()]
        self.batch_size = batch_size
        self.sample_shape = tuple(self.metadata["input_shape"][1:])
        self.n_clusters = self.metadata["n_clusters"]
        self.n_features = int(np.prod(self.sample_shape))

    def _prepare(self, x):
        x = np.asarray(x)
        if x.ndim == 0 or len(x) == 0:
            raise ValueError(f"inputs must hold at least one sample, got shape {x.shape}.")
        x = check_array(x, name="inputs")  # numeric, batch first, finite; float32
        if x.ndim == 2 and len(self.sample_shape) > 1 and x.shape[1] == self.n_features:
            x = x.reshape(len(x), *self.sample_shape)  # flat rows of an image model
        if x.shape[1:] != self.sample_shape:
            raise ValueError(
                f"inputs have samples of shape {x.shape[1:]} but the model takes samples of "
                f"shape {self.sample_shape} (batch first: (n, {', '.join(map(str, self.sample_shape))}))"
                + (f" or flat rows of {self.n_features} values." if len(self.sample_shape) > 1
                   else ".")
            )
        return np.ascontiguousarray(x)

    def assign(self, x):
        """All outputs for `x`: `{"probabilities": (n, K) float32, "cluster": (n,) int32,
        ["embedding": (n, d)]}`."""
        x = self._prepare(x)
        parts = [
            dict(zip(self._output_names,
                     self._session.run(None, {"inputs": x[start:start + self.batch_size]})))
            for start in range(0, len(x), self.batch_size)
        ]
        outputs = {name: np.concatenate([p[name] for p in parts]) for name in self._output_names}
        _check_finite_probabilities(outputs["probabilities"], x)
        return outputs

    def predict_proba(self, x):
        """Cluster probabilities, `(n, K)` float32."""
        return self.assign(x)["probabilities"]

    def predict_labels(self, x):
        """Cluster ids, `(n,)` int32."""
        return self.assign(x)["cluster"]


def _check_finite_probabilities(probabilities, x):
    """Finite inputs far outside the training range can overflow the network; their
    argmax would be a silent, meaningless cluster id."""
    bad = np.flatnonzero(~np.isfinite(probabilities).all(axis=1))
    if bad.size:
        raise ValueError(
            f"the model's probabilities are not finite for {bad.size} of {len(x)} rows (first: "
            f"row {bad[0]}, largest |value| {np.abs(x[bad[0]]).max():.3g}): their values are "
            "too large for the model.")
