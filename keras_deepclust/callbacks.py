"""Callbacks: the DEC target refresh with `tol` stopping, and a metrics logger."""

import keras
import numpy as np
import tensorflow as tf

from keras_deepclust._validation import check_array, check_labels, data_fingerprint
from keras_deepclust.metrics import clustering_scores


class TargetDistributionUpdater(keras.callbacks.Callback):
    """Refreshes the target distribution P every `update_interval` steps and stops on `tol`.

    `DeepEmbeddedClustering.fit` adds it itself. P is computed before the first step
    (unless the model already holds a target for this very data, e.g. when a
    loaded model resumes), then after every `update_interval`-th optimizer step.
    When fewer than `tol` of the hard labels changed between two refreshes, training
    stops before the next step.

    Args:
        x: the whole training set (P is indexed by its rows), or a stream of it.
        update_interval: T, in optimizer steps.
        tol: label-change threshold delta, as a fraction.
        batch_size: batch size of the full-data prediction.
        last_delta: the label change at the last refresh before this fit, logged until
            this fit refreshes (a fit resumed from a backup logs what the uninterrupted
            fit would).

    Attributes:
        updates: list of `(step, delta_label)` for every refresh of this fit.
        stopped_step: optimizer step at which `tol` stopped training, or None.
    """

    def __init__(self, x, update_interval=140, tol=0.001, batch_size=256, last_delta=None):
        super().__init__()
        self.last_delta = last_delta
        self.x = x
        self.update_interval = update_interval
        self.tol = tol
        self.batch_size = batch_size
        self.updates = []
        self.stopped_step = None

    def _step(self):
        return int(self.model.optimizer.iterations.numpy())

    def on_train_begin(self, logs=None):
        self.updates, self.stopped_step = [], None
        # x does not change during fit; a stream has no fingerprint (nor stored target)
        self._fingerprint = (None if isinstance(self.x, tf.data.Dataset)
                             else data_fingerprint(self.x))
        step = self._step()
        if not self.model.has_target_for(self.x, self._fingerprint):
            self._update(step)
        self._last_step = step

    def on_train_batch_end(self, batch, logs=None):
        step = self._step()
        # Integer division, not `step % T == 0`: with steps_per_execution > 1 the
        # callback sees every k-th step only.
        if step // self.update_interval > self._last_step // self.update_interval:
            self._update(step)
        self._last_step = step

    def _update(self, step):
        delta = self.model.update_target_distribution(
            self.x, batch_size=self.batch_size, fingerprint=self._fingerprint
        )
        self.updates.append((step, delta))
        if step > 0 and delta is not None and delta < self.tol:
            self.stopped_step = step
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or not (self.updates or self.last_delta is not None):
            return
        delta = self.updates[-1][1] if self.updates else self.last_delta
        logs["delta_label"] = np.nan if delta is None else delta


class ClusteringMetrics(keras.callbacks.Callback):
    """Logs ACC, NMI, ARI and v-measure of the model's hard labels at each epoch end.

    The scores go into the epoch `logs` (so into `History` and any logger placed
    after this callback) under `prefix + "acc"`, `"nmi"`, `"ari"`, `"v_measure"`.

    Args:
        x: data to label.
        y: `(n_samples,)` true labels.
        batch_size: batch size of the prediction.
        prefix: key prefix, e.g. "val_" for held-out data.

    Example:

    ```python
    model.fit(x, callbacks=[ClusteringMetrics(x, y)])
    ```
    """

    def __init__(self, x, y, batch_size=256, prefix=""):
        super().__init__()
        self.x = check_array(x)
        self.y = check_labels(y, len(self.x), name="y")
        self.batch_size = batch_size
        self.prefix = prefix

    def on_epoch_end(self, epoch, logs=None):
        scores = clustering_scores(
            self.y, self.model.predict_labels(self.x, batch_size=self.batch_size)
        )
        if logs is not None:
            logs.update({self.prefix + name: value for name, value in scores.items()})
