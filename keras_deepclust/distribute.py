"""Choosing a `tf.distribute` strategy by name, for the CLI and the Python API.

Every model of the package trains under a strategy the usual Keras way: create it in
the strategy's scope and call `fit`; the whole-data passes (target refresh, centroid
updates, feature weights, initialisation) run through the same strategy.

Example:

```python
from keras_deepclust import distribute
from keras_deepclust.models import DCEC

strategy = distribute.get_strategy("mirrored")  # all local GPUs, else the CPU
with strategy.scope():
    model = DCEC(n_clusters=10)
model.pretrain(x)
model.fit(x)
```
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker")


def get_strategy(name="default", devices=None):
    """The strategy called `name`.

    Args:
        name: "default" (the current strategy: one device, a GPU when there is one),
            "mirrored" (`MirroredStrategy`: all local GPUs, or `devices`) or
            "multiworker" (`MultiWorkerMirroredStrategy`, configured by `TF_CONFIG`).
        devices: device names for "mirrored"; None takes every local GPU (the CPU
            when there is none).

    Returns:
        A `tf.distribute.Strategy`.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {list(STRATEGIES)}, got {name!r}.")
    if devices is not None and name != "mirrored":
        raise ValueError(f"devices is only used by the 'mirrored' strategy, not {name!r}.")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    check_tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()


def check_tf_config():
    """Checks the `TF_CONFIG` environment variable a multi-worker run needs.

    Returns:
        The parsed `TF_CONFIG` (a dict with "cluster" and "task").
    """
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ValueError(
            "The multiworker strategy needs TF_CONFIG, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}} on the first worker.'
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}): {raw!r}.") from None
    if not isinstance(config, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object, got {raw!r}.")
    for key in ("cluster", "task"):
        if key not in config:
            raise ValueError(f'TF_CONFIG has no "{key}": {raw!r}.')
    task = config["task"]
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ValueError(f'TF_CONFIG\'s "task" needs "type" and "index", got {task!r}.')
    members = config["cluster"].get(task["type"]) if isinstance(config["cluster"], dict) else None
    if not isinstance(members, list) or not members:
        raise ValueError(f'TF_CONFIG\'s "cluster" lists no {task["type"]!r} addresses: {raw!r}.')
    if not isinstance(task["index"], int) or not 0 <= task["index"] < len(members):
        raise ValueError(
            f"TF_CONFIG's task index {task['index']!r} is out of range for the "
            f"{len(members)} {task['type']}(s) of its cluster."
        )
    return config


def check_distributed_fit(batch_size, strategy):
    """Raises unless `fit` can train under `strategy` with the global `batch_size`.

    The batch must split evenly among the replicas: otherwise they get batches of
    different sizes, and the mean loss of each, divided by the number of replicas, is
    no longer the mean over the global batch.
    """
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(
            f"batch_size={batch_size} does not divide among the {replicas} replicas of "
            f"the {type(strategy).__name__}; use a multiple of {replicas}."
        )


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_default(strategy):
    """Whether `strategy` is TensorFlow's default one (no `tf.distribute` scope)."""
    return strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy()


def is_chief(strategy=None):
    """Whether this process is the one that writes files: always on one machine; in a
    multi-worker run, worker 0 (or the task of type "chief")."""
    strategy = strategy or tf.distribute.get_strategy()
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


def multi_worker_fit(model, dataset, steps_per_epoch, epochs, initial_epoch=0, callbacks=None,
                     verbose="auto"):
    """`model.fit` for `MultiWorkerMirroredStrategy`, where Keras 3's own `fit` fails
    (keras-team/keras#20585): the same `train_step` under `strategy.run`, the same
    callbacks, progress bar and `History`.

    Args:
        model: a compiled Keras model created in the strategy's scope.
        dataset: batches of the *global* batch size, the same on every worker (each
            worker keeps its share); one pass of `steps_per_epoch` per epoch.
        steps_per_epoch, epochs, initial_epoch, callbacks, verbose: as in `fit`.

    Returns:
        The `History`.
    """
    strategy = model.distribute_strategy
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=verbose != 0, model=model,
        verbose=1 if verbose == "auto" else verbose, epochs=epochs, steps=steps_per_epoch)
    iterator = iter(strategy.experimental_distribute_dataset(dataset))

    @tf.function
    def train_function(iterator):
        outputs = strategy.run(model.train_step, args=(next(iterator),))
        # Metric results are synchronised across replicas: any replica's copy will do.
        return tf.nest.map_structure(lambda v: strategy.experimental_local_results(v)[0],
                                     outputs)

    model.stop_training = False
    callback_list.on_train_begin()
    logs = {}
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        for step in range(steps_per_epoch):
            callback_list.on_train_batch_begin(step)
            logs = {k: float(np.asarray(v)) for k, v in train_function(iterator).items()}
            callback_list.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        epoch_logs = dict(logs)
        callback_list.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    return model.history
