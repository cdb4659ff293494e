"""Mixed precision (keras_deepclust.layers.precision): loss scaling under float16 and the
CLI's --precision. That every method trains under mixed_bfloat16 and exports float32 is
part of the contract (tests/test_contract.py)."""

import json

import keras
import numpy as np
import pytest

from keras_deepclust import cli
from keras_deepclust.layers.precision import dtype_policy
from keras_deepclust.models import AEC


def test_float16_scales_the_loss_so_that_steps_match_float32(blobs):
    """Under mixed_float16, compile wraps the optimizer in a LossScaleOptimizer whose
    apply() unscales the gradients; the custom train steps scale the loss to match, so
    one epoch moves the weights as far as under float32 (unscaled: 2^15 times less)."""
    x = blobs[0]

    def weight_change(policy):
        with dtype_policy(policy):
            model = AEC(3, random_state=0, hidden_units=(16,), embedding_dim=3)
            model.fit(x, epochs=1, batch_size=16, verbose=0)
            before = [w.numpy().copy() for w in model.encoder.weights]
            model.fit(x, epochs=2, initial_epoch=1, batch_size=16, verbose=0)
        optimizer = type(model.optimizer).__name__
        return optimizer, max(float(np.abs(b - w.numpy()).max())
                              for b, w in zip(before, model.encoder.weights))

    optimizer16, change16 = weight_change("mixed_float16")
    optimizer32, change32 = weight_change("float32")
    assert (optimizer16, optimizer32) == ("LossScaleOptimizer", "Adam")
    assert change16 == pytest.approx(change32, rel=0.2)


def test_cli_precision_flag_trains_mixed_and_records_it(tmp_path, tiny_images, capsys):
    np.savez(tmp_path / "images.npz", x=tiny_images[0], y=tiny_images[1])
    out = tmp_path / "run"
    assert cli.main(["fit", "cae-kmeans", "--dataset", str(tmp_path / "images.npz"), "--quick",
                     "--pretrain-epochs", "1", "--precision", "mixed_bfloat16",
                     "--out", str(out)]) == 0
    assert keras.mixed_precision.global_policy().name == "float32"
    assert json.loads((out / "metrics.json").read_text())["precision"] == "mixed_bfloat16"
    loaded = keras.saving.load_model(out / "model.keras")  # computes in float32
    assert loaded.encoder.layers[1].compute_dtype == "float32"
    with pytest.raises(SystemExit):
        cli.main(["fit", "cae-kmeans", "--dataset", str(tmp_path / "images.npz"),
                  "--precision", "float8", "--out", str(out)])
    assert "--precision: invalid choice: 'float8'" in capsys.readouterr().err
