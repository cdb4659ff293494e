"""`auto`'s pretrained autoencoder per (data set, seed, epochs), cached on disk so that
several benchmarks of what follows the pretraining share one."""

import argparse
import time
from pathlib import Path

DEFAULT_CACHE = "/tmp/keras_deepclust_pretrained"
# Pretraining recipes: `auto`'s, and the variants its settings were chosen against.
RECIPES = {"auto": {}, "no-augment": {"augmentation": None},
           "dense": {"network": "dense", "augmentation": None},
           "code32": {"embedding_dim": 32}, "code64": {"embedding_dim": 64},
           "dense-code32": {"network": "dense", "augmentation": None, "embedding_dim": 32},
           "dense-code64": {"network": "dense", "augmentation": None, "embedding_dim": 64}}


def load_data(dataset, max_rows=0):
    """`(x, y, K)` of a data set `datasets.load` knows, at most `max_rows` rows (a sample
    seeded by 0) when `max_rows`."""
    import numpy as np

    from keras_deepclust.datasets import load

    x, y = load(dataset)
    if max_rows and len(x) > max_rows:
        rows = np.random.default_rng(0).choice(len(x), max_rows, replace=False)
        x, y = x[rows], y[rows]
    return x, y, len(np.unique(y))


def pretrained_auto(dataset, x, n_clusters, seed, epochs, cache=DEFAULT_CACHE, recipe="auto",
                    precision="float32"):
    """`(model, seconds)`: an `AutoClustering` with the pretraining of `recipe` (see
    `RECIPES`) on `x` under the dtype policy `precision`, loaded from `cache` when it was
    saved there (`seconds` is None then). A data set given by its folder is cached under
    the folder's name. The model comes back in float32, as `load_model` rebuilds a model
    that `fit --precision mixed_bfloat16` saved."""
    import keras

    from keras_deepclust.layers.precision import dtype_policy
    from keras_deepclust.models import AutoClustering

    suffix = "" if recipe == "auto" else f"_{recipe}"
    suffix += "" if precision == "float32" else f"_{precision}"
    path = Path(cache) / f"{Path(dataset).name}_seed{seed}_e{epochs}{suffix}.keras"
    # "mixed_bfloat16+float32last30": the last 30 of the epochs in float32.
    policy, _, float32_last = precision.partition("+float32last")
    float32_last = int(float32_last or 0)
    seconds = None
    if not path.exists():
        start = time.perf_counter()
        optimizer = keras.optimizers.Adam()  # auto's pretraining optimizer, kept to go on
        with dtype_policy(policy):
            model = AutoClustering(n_clusters, random_state=seed, **RECIPES[recipe])
            model.pretrain(x, epochs=epochs - float32_last, optimizer=optimizer, verbose=0)
        if float32_last:
            model = _continue_in_float32(model, optimizer, x, float32_last)
        seconds = time.perf_counter() - start
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path.with_suffix(".partial.keras"))
        path.with_suffix(".partial.keras").rename(path)
    with dtype_policy("float32"):
        return keras.saving.load_model(path), seconds


def _continue_in_float32(model, optimizer, x, epochs):
    """A float32 copy of the pretrained `model` (the mixed policy keeps float32 variables)
    pretrained `epochs` more by a copy of `optimizer` holding its state (step count and
    moments), as if one run had switched policy."""
    import keras

    from keras_deepclust.layers.precision import dtype_policy

    with dtype_policy("float32"):
        twin = type(model).from_config(model.get_config())
        twin.finite_codes(x[:2])  # builds it
        twin.set_weights(model.get_weights())
        # The variables the optimizer was built on (Keras keeps them in this private list),
        # matched to the twin's by their place among the model's weights.
        place = {id(v): i for i, v in enumerate(model.weights)}
        trained = [twin.weights[place[id(v)]] for v in optimizer._trainable_variables]
        continued = keras.optimizers.Adam.from_config(optimizer.get_config())
        continued.build(trained)
        for new, kept in zip(continued.variables, optimizer.variables, strict=True):
            new.assign(kept)
        twin.pretrain(x, epochs=epochs, optimizer=continued, verbose=0)
    return twin


def parser_for(doc):
    """The arguments every benchmark of `auto`'s pretrained codes takes: data set, seeds,
    --out (JSON lines), --pretrain-epochs, --cache, --max-rows and --summarise."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("dataset", nargs="?")
    parser.add_argument("seeds", nargs="?", default="0,1,2")
    parser.add_argument("--out")
    parser.add_argument("--pretrain-epochs", type=int, default=200)
    parser.add_argument("--cache", default=DEFAULT_CACHE)
    parser.add_argument("--max-rows", type=int, default=0)
    parser.add_argument("--precision", default="float32",
                        help="the pretraining's dtype policy, float32 or mixed_bfloat16 "
                        "(cached apart; `fit auto` chooses mixed_bfloat16 on CPUs with "
                        "AVX512-BF16), or mixed_bfloat16+float32lastN: the last N epochs "
                        "in float32, with the optimizer's state carried over")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="auto",
                        help="the pretraining: auto's, or a variant of it")
    parser.add_argument("--summarise", nargs="+", help="JSON-lines files to tabulate")
    return parser
