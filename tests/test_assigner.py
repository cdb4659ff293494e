import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_deepclust.layers import HardAssignment
from keras_deepclust.models import DCEC, IDEC


def test_hard_assignment_is_int32_argmax_without_bitcast():
    q = np.array([[0.2, 0.8], [0.9, 0.1], [0.3, 0.7]], "float32")
    labels = HardAssignment()(q)
    assert labels.dtype == tf.int32
    np.testing.assert_array_equal(labels, [1, 0, 1])
    graph = tf.function(HardAssignment().call).get_concrete_function(
        tf.TensorSpec((None, 2), tf.float32)).graph
    op_types = {op.type for op in graph.get_operations()}
    assert "ArgMax" in op_types and not {"Bitcast", "BitwiseAnd"} & op_types


@pytest.mark.parametrize("cls", [IDEC, DCEC])
def test_assigner_matches_the_model(tmp_path, blobs, tiny_images, cls):
    x = tiny_images[0] if cls is DCEC else blobs[0]
    model = cls(n_clusters=3, random_state=0, embedding_dim=3,
                **({"filters": (4, 8), "kernel_sizes": (3, 3)} if cls is DCEC else {"hidden_units": (16,)}))
    model.pretrain(x, epochs=2, verbose=0)
    model.initialize_centroids(x)
    assigner = model.assigner(include_embedding=True)
    assert assigner.input_shape == (None, *x.shape[1:])
    assert [t.name for t in assigner.inputs] == ["inputs"]
    outputs = assigner.predict(x, verbose=0)
    assert set(outputs) == {"probabilities", "cluster", "embedding"}
    assert outputs["cluster"].dtype == np.int32
    np.testing.assert_allclose(outputs["probabilities"], model.predict(x), atol=1e-6)
    np.testing.assert_array_equal(outputs["cluster"], model.predict_labels(x))
    np.testing.assert_allclose(outputs["embedding"], model.embed(x), atol=1e-6)
    assert set(model.assigner().output) == {"probabilities", "cluster"}
    path = tmp_path / "assigner.keras"
    assigner.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(restored.predict(x, verbose=0)["cluster"], outputs["cluster"])


def test_assigner_needs_a_built_model():
    with pytest.raises(ValueError, match="not built yet"):
        IDEC(n_clusters=3).assigner()
