import numpy as np
import pytest
from sklearn import metrics as sk

from keras_deepclust import metrics


def test_accuracy_hand_computed():
    y_true = [0, 0, 0, 1, 1, 1]
    y_pred = [2, 2, 1, 1, 1, 1]
    # Best map: 2->0 (2 right), 1->1 (3 right): 5 / 6.
    assert metrics.cluster_accuracy(y_true, y_pred) == pytest.approx(5 / 6)


def test_accuracy_with_more_clusters_than_classes():
    y_true = [0, 0, 1, 1]
    y_pred = [0, 1, 2, 2]
    # One cluster of class 0 stays unmatched: 3 / 4.
    assert metrics.cluster_accuracy(y_true, y_pred) == pytest.approx(0.75)
    assert metrics.cluster_accuracy(["a", "a", "b"], [5, 5, 5]) == pytest.approx(2 / 3)


def test_scores_match_scikit_learn():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 300), rng.integers(0, 5, 300)
    scores = metrics.clustering_scores(y_true, y_pred)
    assert scores["nmi"] == pytest.approx(sk.normalized_mutual_info_score(y_true, y_pred))
    assert scores["ari"] == pytest.approx(sk.adjusted_rand_score(y_true, y_pred))
    assert scores["v_measure"] == pytest.approx(sk.v_measure_score(y_true, y_pred))
    perfect = metrics.clustering_scores(y_true, (y_true + 1) % 4)
    assert perfect == pytest.approx({"acc": 1.0, "nmi": 1.0, "ari": 1.0, "v_measure": 1.0})


def test_label_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="y_pred has 2 entries but the data has 3 samples"):
        metrics.cluster_accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="y_true must be 1-D"):
        metrics.clustering_scores([[0, 1]], [0, 1])
