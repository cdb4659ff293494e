"""ClusterAssigner: cluster assignment with ONNX Runtime, without TensorFlow or Keras."""

from pathlib import Path

import numpy as np

from keras_deepclust._validation import (check_finite, check_layout,
                                         check_positive_int)
from keras_deepclust.serving.metadata import read_metadata

FLOAT32_MAX = float(np.finfo(np.float32).max)  # larger inputs become infinities


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

        options = check_assigner_options(batch_size, intra_op_threads, inter_op_threads)
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"{self.path} is a folder, not an ONNX file.")
        if not self.path.is_file():
            raise FileNotFoundError(f"No such ONNX file: {self.path}")
        self.metadata = read_metadata(self.path, verify_checksum=verify_checksum)
        if self.metadata["format"] != "onnx":
            raise ValueError(f"{self.path} is a {self.metadata['format']} artifact, not ONNX.")
        session_options = onnxruntime.SessionOptions()
        if options["intra_op_threads"] is not None:
            session_options.intra_op_num_threads = options["intra_op_threads"]
        if options["inter_op_threads"] is not None:
            session_options.inter_op_num_threads = options["inter_op_threads"]
        try:
            self._session = onnxruntime.InferenceSession(
                str(self.path), session_options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime's own classes (InvalidProtobuf, Fail...)
            raise ValueError(f"ONNX Runtime cannot load {self.path}: {error}") from None
        self._output_names = [o.name for o in self._session.get_outputs()]
        self.batch_size = options["batch_size"]
        self.sample_shape = tuple(self.metadata["input_shape"][1:])
        self.n_clusters = self.metadata["n_clusters"]
        self.n_features = int(np.prod(self.sample_shape))

    def check_input_shape(self, shape, name="inputs"):
        """Checks that an input of `shape` (batch first) holds samples of the model's
        sample shape, or flat rows of as many values; a ValueError naming `name` and
        both shapes otherwise. Lets a caller refuse a file from its header alone."""
        shape = tuple(shape)
        flat_rows = len(shape) == 2 and shape[1] == self.n_features
        if shape[1:] != self.sample_shape and not flat_rows:
            raise ValueError(
                f"{name} has samples of shape {shape[1:]} but the model takes samples of "
                f"shape {self.sample_shape} (batch first: (n, {', '.join(map(str, self.sample_shape))}))"
                + (f" or flat rows of {self.n_features} values." if len(self.sample_shape) > 1
                   else ".")
            )

    def _prepare(self, x, first_row, name):
        """`x` checked (real numbers, batch first, finite and within float32's range,
        the model's sample shape or flat rows) as a C-ordered float32 array of samples."""
        x = np.asarray(x)
        check_layout(x.shape, x.dtype, name=name)
        check_finite(x, name=name, first_row=first_row)  # in x's own dtype
        _check_within_float32(x, first_row, name)
        self.check_input_shape(x.shape, name)
        x = x.astype(np.float32, copy=False).reshape(len(x), *self.sample_shape)
        return np.ascontiguousarray(x)

    def assign(self, x, first_row=0, name="inputs"):
        """All outputs for `x`: `{"probabilities": (n, K) float32, "cluster": (n,) int32,
        ["embedding": (n, d)]}`.

        Refuses (ValueError) rows holding NaN, infinite values or values beyond float32's
        range, and rows the network overflows on. Error messages call the input `name`
        and number its rows from `first_row` (for a chunk of a larger file)."""
        x = self._prepare(x, first_row, name)
        parts = [
            dict(zip(self._output_names,
                     self._session.run(None, {"inputs": x[start:start + self.batch_size]})))
            for start in range(0, len(x), self.batch_size)
        ]
        outputs = {output: np.concatenate([p[output] for p in parts])
                   for output in self._output_names}
        _check_finite_probabilities(outputs["probabilities"], x, first_row, name)
        return outputs

    def predict_proba(self, x):
        """Cluster probabilities, `(n, K)` float32."""
        return self.assign(x)["probabilities"]

    def predict_labels(self, x):
        """Cluster ids, `(n,)` int32."""
        return self.assign(x)["cluster"]


def check_assigner_options(batch_size=4096, intra_op_threads=None, inter_op_threads=None,
                           verify_checksum=True):
    """The `ClusterAssigner` options, checked: `batch_size` a positive integer, each
    thread count None (ONNX Runtime's default) or a positive integer. Raises a ValueError
    naming the option and its value, so a caller (the server) can refuse them before
    loading any model."""
    options = {"batch_size": check_positive_int(batch_size, "batch_size"),
               "verify_checksum": verify_checksum}
    for option, value in (("intra_op_threads", intra_op_threads),
                          ("inter_op_threads", inter_op_threads)):
        options[option] = None if value is None else check_positive_int(value, option)
    return options


def _check_within_float32(x, first_row, name):
    """Refuses finite values beyond float32's range, which the model's float32 input
    would turn into infinities, naming the first one's index in the whole input (`x`
    starts at row `first_row` of it). Two reductions when all is well: no copy of `x`."""
    if x.dtype.kind != "f" or x.dtype.itemsize <= 4:
        return  # float32 and narrower, and int64's range, lie within float32's
    if max(-x.min(), x.max()) > FLOAT32_MAX:
        too_large = np.abs(x) > FLOAT32_MAX
        index = tuple(int(i) for i in np.argwhere(too_large)[0])
        raise ValueError(
            f"{name} holds values too large for the model, beyond float32's "
            f"±{FLOAT32_MAX:.3g} ({int(too_large.sum())} of them, first at index "
            f"{(index[0] + first_row, *index[1:])}: {float(x[index]):.3g}).")


def _check_finite_probabilities(probabilities, x, first_row=0, name="inputs"):
    """Finite inputs far outside the training range can overflow the network; their
    argmax would be a silent, meaningless cluster id."""
    bad = np.flatnonzero(~np.isfinite(probabilities).all(axis=1))
    if bad.size:
        raise ValueError(
            f"{name} holds values too large for the model: its probabilities are not finite "
            f"for {bad.size} row(s) (first: row {first_row + bad[0]}, largest |value| "
            f"{np.abs(x[bad[0]]).max():.3g}).")
