"""Mixed precision (keras_deepclust.layers.precision): loss scaling under float16 and the
CLI's --precision. That every method trains under mixed_bfloat16 and exports float32 is
part of the contract (tests/test_contract.py)."""

import json

import keras
import numpy as np
import pytest

from keras_deepclust import cli
from keras_deepclust.layers import precision
from keras_deepclust.layers.precision import cpu_flags, dtype_policy, resolve_policy
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


def test_auto_precision_is_bfloat16_only_on_a_cpu_with_bfloat16_instructions(tmp_path):
    assert resolve_policy("auto", flags={"avx2", "avx512_bf16"}) == (
        "mixed_bfloat16", "auto: this CPU has avx512_bf16")
    assert resolve_policy("auto", flags={"amx_bf16", "amx_tile"})[0] == "mixed_bfloat16"
    assert resolve_policy("auto", flags={"avx2", "avx512f"}) == (
        "float32", "auto: this CPU has no bfloat16 instructions")
    assert resolve_policy("auto", gpu_visible=True, flags={"amx_bf16"}) == (
        "float32", "auto: a GPU is visible")
    assert resolve_policy("mixed_float16", flags=set()) == ("mixed_float16", "asked")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512_bf16 sse2\n\n"
                       "processor\t: 1\nflags\t\t: fpu avx512_bf16 sse2\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx512_bf16", "sse2"}
    assert cpu_flags(tmp_path / "missing") == set()


def test_cli_precision_auto_trains_mixed_on_a_bfloat16_cpu_and_says_so(
        tmp_path, tiny_images, capsys, monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"sse2", "amx_bf16"})
    np.savez(tmp_path / "images.npz", x=tiny_images[0], y=tiny_images[1])
    out = tmp_path / "run"
    assert cli.main(["fit", "cae-kmeans", "--dataset", str(tmp_path / "images.npz"), "--quick",
                     "--pretrain-epochs", "1", "--out", str(out)]) == 0
    assert keras.mixed_precision.global_policy().name == "float32"
    report = json.loads((out / "metrics.json").read_text())
    assert (report["precision"], report["precision_chosen_by"]) == (
        "mixed_bfloat16", "auto: this CPU has amx_bf16")
    assert "precision mixed_bfloat16 (auto: this CPU has amx_bf16)" in capsys.readouterr().out
    loaded = keras.saving.load_model(out / "model.keras")  # computes in float32
    assert loaded.encoder.layers[1].compute_dtype == "float32"
    with pytest.raises(SystemExit):
        cli.main(["fit", "cae-kmeans", "--dataset", str(tmp_path / "images.npz"),
                  "--precision", "float8", "--out", str(out)])
    assert "--precision: invalid choice: 'float8'" in capsys.readouterr().err
