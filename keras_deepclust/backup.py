"""Backups that let a killed clustering fit resume where it was."""

import json
import math
import os
from pathlib import Path

import keras
import numpy as np

from keras_deepclust._backup_files import (LATEST, make_folder, remove_backup,
                                           temporary_weights_name, weights_name)
from keras_deepclust._io import write_json
from keras_deepclust._validation import data_fingerprint
from keras_deepclust.distribute import is_chief


class ClusteringBackup(keras.callbacks.Callback):
    """Backs up a clustering `fit` (or `pretrain`) at every epoch end; a later call
    with the same callback resumes from the last backup.

    Unlike `keras.callbacks.BackupAndRestore`, the backup holds the clustering state
    too (targets, centroids, assignments, feature weights: the model's own variables),
    the shuffling seed, the data's fingerprint and the epochs' logs, and it is written
    atomically: the
    weights go to a new file, then `latest.json` is renamed over the old one, so a
    kill at any point leaves the previous complete backup. The clustering models
    shuffle each epoch with a permutation that depends only on (seed, epoch), so a
    resumed fit ends with the same labels as one that was never killed, and its
    `History` lists every epoch, those before the kill included. A kill in the middle
    of an epoch repeats that epoch from its start.

    Only the files the backup writes are ever removed, and the folder only if the
    backup created it: a folder that holds anything else keeps it.

    Args:
        backup_dir: folder of the backup (created when needed).
        delete_on_success: remove the backup when `fit` ends normally (its files, then
            the folder if the backup created it and that leaves it empty).

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
        self._restored, self._history = {}, {}  # epochs' logs: before the resume; all

    def exists(self):
        """Whether the folder holds a backup to resume from."""
        return (self.backup_dir / LATEST).is_file()

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
        self._restored, self._history = {}, {}
        if not self.exists():
            return 0, self._shuffle_seed
        latest = json.loads((self.backup_dir / LATEST).read_text())
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
        self._restored = _logged_epochs(latest)
        self._history = {key: list(values) for key, values in self._restored.items()}
        return latest["epoch"], self._shuffle_seed

    def saved_history(self):
        """The logs of every backed-up epoch, `{name: [value per epoch]}` as in
        `History.history`; empty without a backup."""
        if not self.exists():
            return {}
        return _logged_epochs(json.loads((self.backup_dir / LATEST).read_text()))

    def last_logged(self, name):
        """The last value of `name` in the epochs `restore` brought back, or None."""
        values = self._restored.get(name)
        return values[-1] if values else None

    def whole_history(self, history):
        """Puts the epochs `restore` brought back before those of `history` (the
        `History` of the fit that resumed), so it lists every epoch of the run."""
        own = history.history or {}
        done = len(getattr(history, "epoch", None) or [])
        before = len(next(iter(self._restored.values()), []))
        history.history = {
            key: self._restored.get(key, [math.nan] * before) + own.get(key, [math.nan] * done)
            for key in {**self._restored, **own}}
        history.epoch = list(range(before + done))
        return history

    def on_epoch_end(self, epoch, logs=None):
        _append_epoch(self._history, logs or {})
        if not is_chief(self.model.distribute_strategy):
            return  # one writer: in a multi-worker run the folder is the chief's
        if self._identity is None:
            raise RuntimeError(
                "ClusteringBackup works inside the fit or pretrain of a keras_deepclust "
                "model, which restores from it before training; it was not bound to this fit."
            )
        make_folder(self.backup_dir)
        name = weights_name(epoch + 1)
        tmp = self.backup_dir / temporary_weights_name(os.getpid())
        self.model.save_weights(tmp, overwrite=True)
        os.replace(tmp, self.backup_dir / name)
        write_json(self.backup_dir / LATEST, {
            **self._identity, "epoch": epoch + 1, "weights": name,
            "shuffle_seed": self._shuffle_seed, "history": self._history,
        })
        for old in self.backup_dir.glob("epoch-*.weights.h5"):
            if old.name != name:
                old.unlink()

    def on_train_end(self, logs=None):
        if self.delete_on_success and is_chief(self.model.distribute_strategy):
            remove_backup(self.backup_dir)


def single_backup(callbacks):
    """The one `ClusteringBackup` among a fit's `callbacks`, or None."""
    backups = [c for c in callbacks or () if isinstance(c, ClusteringBackup)]
    if len(backups) > 1:
        raise ValueError(f"Pass at most one ClusteringBackup, got {len(backups)}.")
    return backups[0] if backups else None


def _logged_epochs(latest):
    """The epochs' logs of a `latest.json` (none in a backup of an older version)."""
    return {key: [math.nan if value is None else value for value in values]
            for key, values in latest.get("history", {}).items()}


def _append_epoch(history, logs):
    """Appends one epoch's `logs` to `history`, NaN where a quantity was not logged, so
    that every list has an entry per epoch."""
    done = len(next(iter(history.values()), []))
    for key in {**history, **logs}:
        history.setdefault(key, [math.nan] * done).append(
            float(logs[key]) if key in logs else math.nan)
