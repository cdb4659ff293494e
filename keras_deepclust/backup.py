"""Backups that let a killed clustering fit resume where it was."""

import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np

from keras_deepclust._io import write_json
from keras_deepclust._validation import data_fingerprint
from keras_deepclust.distribute import is_chief

_LATEST = "latest.json"


class ClusteringBackup(keras.callbacks.Callback):
    """Backs up a clustering `fit` (or `pretrain`) at every epoch end; a later call
    with the same callback resumes from the last backup.

    Unlike `keras.callbacks.BackupAndRestore`, the backup holds the clustering state
    too (targets, centroids, assignments, feature weights: the model's own variables),
    the shuffling seed, and the data's fingerprint, and it is written atomically: the
    weights go to a new file, then `latest.json` is renamed over the old one, so a
    kill at any point leaves the previous complete backup. The clustering models
    shuffle each epoch with a permutation that depends only on (seed, epoch), so a
    resumed fit ends with the same labels as one that was never killed. A kill in the
    middle of an epoch repeats that epoch from its start.

    Args:
        backup_dir: folder of the backup (created when needed).
        delete_on_success: remove the folder when `fit` ends normally.

    Example:

    ```python
    backup = keras_deepclust.backup.ClusteringBackup("runs/dcec-backup")
    model.fit(x, callbacks=[backup])  # killed? run the same line again
    ```
    """

    def __init__(self, backup_dir, delete_on_success=True):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.delete_on_success = delete_on_success
        self._identity = self._shuffle_seed = None

    def exists(self):
        """Whether the folder holds a backup to resume from."""
        return (self.backup_dir / _LATEST).is_file()

    def restore(self, model, x, shuffle_seed, network=None, phase="fit"):
        """Loads the last backup into `network` if there is one.

        Args:
            model: the clustering model being trained.
            x: its training data (checked against the backup's fingerprint).
            shuffle_seed: the seed this fit would shuffle with.
            network: the Keras model that `fit` trains and the backup saves (built and
                compiled): `model` itself, or its autoencoder during `pretrain`.
            phase: "fit" or "pretrain" (a backup of one never resumes the other).

        Returns:
            `(initial_epoch, shuffle_seed)`: where to start and the seed to shuffle
            with (the backed-up run's, when resuming).
        """
        network = model if network is None else network
        self._identity = {"model": type(model).__name__, "n_clusters": model.n_clusters,
                          "phase": phase, "n_samples": len(x),
                          "fingerprint": data_fingerprint(x).tolist()}
        self._shuffle_seed = int(shuffle_seed)
        if not self.exists():
            return 0, self._shuffle_seed
        latest = json.loads((self.backup_dir / _LATEST).read_text())
        for key, value in self._identity.items():
            if not np.array_equal(latest.get(key), value):
                raise ValueError(
                    f"The backup in {self.backup_dir} was made by another run ({key} "
                    f"{latest.get(key)!r}, this fit {value!r}); use another folder or remove it."
                )
        if not network.optimizer.built:
            network.optimizer.build(network.trainable_variables)
        network.load_weights(self.backup_dir / latest["weights"])
        self._shuffle_seed = latest["shuffle_seed"]
        return latest["epoch"], self._shuffle_seed

    def on_epoch_end(self, epoch, logs=None):
        if not is_chief(self.model.distribute_strategy):
            return  # one writer: in a multi-worker run the folder is the chief's
        if self._identity is None:
            raise RuntimeError(
                "ClusteringBackup works inside the fit or pretrain of a keras_deepclust "
                "model, which restores from it before training; it was not bound to this fit."
            )
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch + 1}.weights.h5"
        tmp = self.backup_dir / f".tmp-{os.getpid()}.weights.h5"
        self.model.save_weights(tmp, overwrite=True)
        os.replace(tmp, self.backup_dir / name)
        write_json(self.backup_dir / _LATEST, {
            **self._identity, "epoch": epoch + 1, "weights": name,
            "shuffle_seed": self._shuffle_seed,
        })
        for old in self.backup_dir.glob("epoch-*.weights.h5"):
            if old.name != name:
                old.unlink()

    def on_train_end(self, logs=None):
        if self.delete_on_success and is_chief(self.model.distribute_strategy):
            shutil.rmtree(self.backup_dir, ignore_errors=True)
