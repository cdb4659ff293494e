"""The contract every registered method keeps, from fit to serving; a method enrols by
registering (`keras_deepclust.models.register_method`).

Each method is fitted once on small raw data — a table whose columns differ in scale
by four orders of magnitude for dense networks, uint8 images for convolutional ones —
and then: labels and probabilities have their shapes, the cluster sizes are reported,
a fit on the same rows streamed gives the same model, every export format, run by its own runtime on the raw rows, gives the fit's labels,
and bad inputs are refused with their reason.
"""

import numpy as np
import pytest

from keras_deepclust.models import get_method, list_methods

N_CLUSTERS = 3
# Small networks per family, so the whole registry fits in seconds.
DENSE = {"hidden_units": (16,), "embedding_dim": 3}
CONV = {"filters": (4, 8), "kernel_sizes": (3, 3), "embedding_dim": 3}
OPTIONS = {
    # n_weight_samples: all rows, which a stream's reservoir sample also keeps.
    "dac": {"hidden_units": (16, 8), "n_weight_samples": 100, "n_init": 2},
    "damic": {**DENSE, "clustering_units": (8,), "init_epochs": 2, "n_init": 2},
    "n2d": {**DENSE, "n_components": 2, "n_neighbors": 5},
    # Refined on these 8 x 8 images too (by default it refines from 16 a side), in the
    # stream's batches of 32, so that the Student-t head it ends with keeps the contract.
    "auto": {**CONV, "n_components": 2, "n_neighbors": 5, "refine": True, "refine_epochs": 2,
             "refine_batch_size": 32},
    "aec": {"hidden_units": (16,), "embedding_dim": 3},
}


@pytest.mark.parametrize("name", list_methods())
def test_method_is_composed_of_networks_and_one_way_of_fitting(name):
    """A method takes its `fit` from one of the two fitting parts, whatever its networks:
    in epochs (`IterativeClusteringModel`) or once (`OneShotClusteringModel`); only DAC
    adds an argument (`weight_labels`) before handing over to the trainer's `fit`."""
    from keras_deepclust.models.one_shot import OneShotClusteringModel
    from keras_deepclust.models.trainer import IterativeClusteringModel

    cls = get_method(name)
    iterative = issubclass(cls, IterativeClusteringModel)
    assert iterative != issubclass(cls, OneShotClusteringModel)
    assert cls.ITERATIVE_FIT is iterative
    part = IterativeClusteringModel if iterative else OneShotClusteringModel
    owners = [klass.__name__ for klass in cls.__mro__ if "fit" in vars(klass)
              and klass is not part and issubclass(klass, part)]
    assert owners == (["DAC"] if name == "dac" else [])


def _is_conv(name):
    """Whether the method gets images: conv networks, and "auto" (conv on images)."""
    return get_method(name)(n_clusters=2).network in ("conv", "auto")


def raw_table(n=90, seed=0):
    """Three blobs in 5-D whose columns have scales 1 .. 10^4 and offsets up to 5000:
    fitted without per-feature scaling, the widest column would decide everything."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n // 3)
    centers = rng.normal(0, 3, (3, 5))
    unit = centers[y] + rng.normal(0, 0.5, (n, 5))
    return (unit * [1, 10, 100, 1000, 1e4] + [0, 5, 50, 500, 5000]).astype(np.float32), y


def raw_images(n=90, seed=0):
    """uint8 8x8x1 images: a bright quadrant per class on a noisy dark background."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n // 3)
    x = rng.integers(0, 40, (n, 8, 8, 1))
    for i, label in enumerate(y):
        x[i, 4 * (label // 2):4 * (label // 2) + 4, 4 * (label % 2):4 * (label % 2) + 4] += 180
    return x.astype(np.uint8), y


def fit_tiny(name):
    """The method fitted on raw rows in their order, and a twin that is the same model
    up to the fit: pretrained alike, not yet fitted."""
    conv = _is_conv(name)
    x, y = raw_images() if conv else raw_table()

    def make():
        return get_method(name)(n_clusters=N_CLUSTERS, random_state=0,
                                **OPTIONS.get(name, CONV if conv else DENSE))

    model, twin = make(), make()
    if hasattr(model, "pretrain"):  # a method without a decoder starts from its seed alone
        model.pretrain(x, epochs=3, batch_size=32, verbose=0)
        twin.copy_autoencoder_from(model)
    history = model.fit(x, **fit_arguments(model))
    return model, twin, x, history


def fit_arguments(model):
    return dict(batch_size=32, shuffle=False, verbose=0,
                **({"epochs": 2} if model.ITERATIVE_FIT else {}))


# One test per method, so that each is fitted once (the CLI's test in test_cli.py loads
# every method's .keras in a fresh process).
@pytest.mark.parametrize("name", list_methods())
def test_method_contract(name, tmp_path):
    model, twin, x, history = fit_tiny(name)
    check_labels_probabilities_and_cluster_sizes(model, x, history)
    check_stream_fit_equals_array_fit(model, twin, x, history)
    check_every_export_in_its_own_runtime(name, model, x, tmp_path)
    check_bad_inputs(model, x)


# The XLA and bfloat16 path once per implementation, network and head: a method that is
# another's variant (`models.base.method_variant`) trains with the same code, so each
# network (dense, conv), reconstruction term and head (Student-t, k-means, mixture,
# manifold, DAMIC's) appears once; the test below checks that every implementation is here.
XLA_METHODS = ("aec", "ae-kmeans", "auto", "cae-gmm", "dac", "damic", "dcec", "dec", "imsat",
               "n2d")


def test_every_implementation_has_an_xla_run():
    def implementation(name):
        cls = get_method(name)
        return cls.__bases__[0] if cls.__init__.__qualname__.startswith("method_variant.") \
            else cls
    implementations = {implementation(n) for n in list_methods()}
    assert len(implementations) == 8
    assert implementations == {implementation(n) for n in XLA_METHODS}


@pytest.mark.parametrize("name", XLA_METHODS)
def test_method_trains_as_on_a_gpu_xla_and_mixed_bfloat16_and_exports_float32(
        name, tmp_path, monkeypatch):
    """The path a GPU machine takes: every step XLA-compiled (the default when a GPU is
    visible, emulated here), under a mixed policy, exported as float32."""
    import keras

    from keras_deepclust import export
    from keras_deepclust.layers.precision import dtype_policy
    from keras_deepclust.models import trainer
    from keras_deepclust.serving import ClusterAssigner

    compiled = []
    monkeypatch.setattr(trainer, "_gpu_visible", lambda: compiled.append(True) or True)
    with dtype_policy("mixed_bfloat16"):
        model, _, x, history = fit_tiny(name)
        labels, probabilities = model.predict_labels(x), model.predict_proba(x)
        results = export.export(model, tmp_path, formats=("onnx",), name=name, sample=x)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    assert compiled  # the pretraining at least asked for XLA ...
    if model.ITERATIVE_FIT:  # ... and so did the clustering steps
        assert model.jit_compile is True
    # The networks computed in bfloat16; what follows the codes in float32.
    dense = [layer for layer in model.encoder.layers if layer.weights]
    assert dense[0].compute_dtype == "bfloat16" and dense[0].weights[0].dtype == "float32"
    assert model.soft_assignment_head().compute_dtype == "float32"
    assert all(np.isfinite(values).all() for values in history.history.values())
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # The export is a float32 copy of the weights: exact against it, and near the
    # bfloat16 model's own labels.
    parity = results["onnx"]["parity"]
    assert parity["cluster_agreement"] >= 1.0 - parity["near_ties"] / len(x)
    exported = ClusterAssigner(tmp_path / f"{name}.onnx").predict_labels(x)
    assert np.mean(exported == labels) >= 0.9


def check_labels_probabilities_and_cluster_sizes(model, x, history):
    labels, probabilities = model.predict_labels(x), model.predict_proba(x)
    assert labels.shape == (len(x),) and labels.dtype == np.int32
    assert probabilities.shape == (len(x), N_CLUSTERS)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(np.argmax(probabilities, axis=1), labels)
    np.testing.assert_array_equal(model.labels_, labels)  # the fit's labels of x
    assert history.cluster_sizes == np.bincount(labels, minlength=N_CLUSTERS).tolist()
    assert history.empty_clusters == [k for k, n in enumerate(history.cluster_sizes) if n == 0]
    # The scaling was learnt from the raw rows: the network sees unit-scale inputs.
    scaled = model.preprocess(x)
    if x.ndim == 2 and getattr(model, "output_activation", None) == "sigmoid":  # min-max per feature
        assert model.input_scaling.scaling == "minmax"
        np.testing.assert_allclose(scaled.min(axis=0), 0, atol=1e-6)
        np.testing.assert_allclose(scaled.max(axis=0), 1, atol=1e-6)
    elif x.ndim == 2:  # standardised per feature
        np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-4)
        np.testing.assert_allclose(scaled.std(axis=0), 1, atol=1e-4)
    else:  # uint8 pixels by 255
        np.testing.assert_array_equal(scaled, x.astype(np.float32) / 255.0)


def check_stream_fit_equals_array_fit(model, twin, x, history):
    """The twin fitted on the same raw rows as a `tf.data` stream in the same batches:
    the same history, weights and labels (per-row state recomputed, not stored)."""
    import tensorflow as tf

    if not model.STREAMING_FIT:
        return
    stream = tf.data.Dataset.from_tensor_slices(x).batch(32)
    arguments = fit_arguments(model)
    del arguments["batch_size"], arguments["shuffle"]
    streamed = twin.fit(stream, **arguments)
    assert streamed.history.keys() == history.history.keys()
    for key, values in history.history.items():
        if key.endswith("_seconds"):  # a time, not a result
            continue
        np.testing.assert_allclose(streamed.history[key], values, rtol=1e-4, atol=1e-6,
                                   err_msg=key)
    for a, b in zip(model.weights, twin.weights, strict=True):
        if "fingerprint" in a.path:  # an array's identity, which a stream has not
            continue
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5, err_msg=a.path)
    np.testing.assert_array_equal(twin.labels_, model.labels_)
    np.testing.assert_array_equal(twin.predict_labels(stream), model.labels_)


def check_every_export_in_its_own_runtime(name, model, x, folder):
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from keras_deepclust import export
    from keras_deepclust.serving import ClusterAssigner

    labels = model.predict_labels(x)
    results = export.export(model, folder, name=name, sample=x)
    assert set(results) == set(export.FORMATS)
    for metadata in results.values():
        assert metadata["method"] == name and metadata["preprocessing"]["in_model"]
        assert metadata["parity"]["cluster_agreement"] >= 1.0 - (
            metadata["parity"]["near_ties"] / len(x))

    assigner = ClusterAssigner(folder / f"{name}.onnx")  # ONNX Runtime
    np.testing.assert_array_equal(assigner.predict_labels(x), labels)
    np.testing.assert_allclose(assigner.predict_proba(x), model.predict_proba(x),
                               atol=results["onnx"]["parity"]["probability_tolerance"])
    if x.ndim > 2:  # flat rows, as a JSON client or a table of pixels holds them
        np.testing.assert_array_equal(assigner.predict_labels(x.reshape(len(x), -1)), labels)

    runner = Interpreter(model_path=str(folder / f"{name}.tflite")).get_signature_runner(
        "serving_default")  # LiteRT
    np.testing.assert_array_equal(runner(inputs=x.astype(np.float32))["cluster"], labels)

    version = folder / "savedmodel" / name / "1"  # TensorFlow's SavedModel loader
    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    np.testing.assert_array_equal(serve(inputs=tf.constant(x, tf.float32))["cluster"].numpy(),
                                  labels)


def check_bad_inputs(model, x):
    with pytest.raises(ValueError, match=r"samples of shape \(7,\) but the model was built"):
        model.predict_labels(np.zeros((4, 7), np.float32))
    bad = x.astype(np.float32)
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite values"):
        model.predict_labels(bad)
    with pytest.raises(ValueError, match="does not use labels"):
        model.fit(x, np.zeros(len(x)))
    if not model.ITERATIVE_FIT:
        with pytest.raises(ValueError, match="cannot honour epochs"):
            model.fit(x, epochs=3)


def test_constant_features_scale_to_zero_and_bad_scalings_are_refused():
    x, _ = raw_table()
    x[:, 2] = 7.0  # as the digits' blank border pixels, flattened
    for scaling in ("standard", "minmax"):
        model = get_method("ae-kmeans")(n_clusters=3, scaling=scaling, **DENSE)
        model.pretrain(x, epochs=1, verbose=0)
        scaled = model.preprocess(np.concatenate([x, x[:1] + [0, 0, 2.0, 0, 0]]))
        assert np.all(scaled[:-1, 2] == 0) and scaled[-1, 2] == 2.0  # scale 1, offset 7
        assert np.isfinite(scaled).all() and scaled[:, 3].std() > 0
    with pytest.raises(ValueError, match=r"'standard': every feature is constant, so there "
                                         r"is nothing to cluster"):
        get_method("ae-kmeans")(n_clusters=3, **DENSE).pretrain(np.ones((20, 5)), verbose=0)
    with pytest.raises(ValueError, match="scaling must be one of"):
        get_method("dec")(n_clusters=3, scaling="zscore")
    images = np.full((20, 8, 8, 1), 3, np.uint8)
    with pytest.raises(ValueError, match="every value of the images is the same"):
        get_method("cae-kmeans")(n_clusters=3, scaling="minmax", **CONV).pretrain(images)
    import tensorflow as tf

    empty = tf.data.Dataset.from_tensor_slices(np.zeros((0, 5), np.float32)).batch(4)
    with pytest.raises(ValueError, match="yields no rows to learn the input scaling from"):
        get_method("ae-kmeans")(n_clusters=3, **DENSE).pretrain(empty)
    with pytest.raises(ValueError, match="evaluate\\(\\) does not use labels"):
        get_method("ae-kmeans")(n_clusters=3, **DENSE).evaluate(x, np.zeros(len(x)))
