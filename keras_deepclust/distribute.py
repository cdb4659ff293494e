"""Choosing a `tf.distribute` strategy by name, for the CLI and the Python API.

Every model of the package trains under a strategy the usual Keras way: create it in
the strategy's scope and call `fit`; the whole-data passes (target refresh, centre
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
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        raise NotImplementedError(
            "Keras 3's model.fit does not run under MultiWorkerMirroredStrategy "
            "(keras-team/keras#20585), and keras-deepclust's own multi-worker training "
            "loop is not written yet. Train on one machine (default or mirrored strategy)."
        )
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(
            f"batch_size={batch_size} does not divide among the {replicas} replicas of "
            f"the {type(strategy).__name__}; use a multiple of {replicas}."
        )
