"""Two real worker processes on 127.0.0.1 train one model with MultiWorkerMirroredStrategy."""

import json
import os
import re
import socket
import subprocess
import sys

import numpy as np


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_train_in_sync_and_only_the_chief_writes(tmp_path, tiny_images):
    x, y = tiny_images
    data = tmp_path / "images.npz"
    np.savez(data, x=x, y=y)
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        command = [sys.executable, "-c", "import sys; from keras_deepclust import cli; "
                   "sys.exit(cli.main(sys.argv[1:]))", "fit", "idec", "--dataset", str(data),
                   "--pretrain-epochs", "3", "--epochs", "3", "--batch-size", "16",
                   "--strategy", "multiworker",
                   "--out", str(tmp_path / f"worker{index}")]
        processes.append(subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CONFIG": json.dumps(tf_config), "TF_CPP_MIN_LOG_LEVEL": "3"}))
    outputs = [p.communicate(timeout=600)[0].decode() for p in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
    digests = [re.search(r"weights digest: ([0-9.]+)", output).group(1) for output in outputs]
    assert digests[0] == digests[1], outputs
    report = json.loads((tmp_path / "worker0" / "metrics.json").read_text())
    assert report["strategy"] == "multiworker" and report["replicas"] == 2
    assert report["pretrain_epochs"] == 3 and report["clustering_epochs"] == 3
    assert sum(report["cluster_sizes"]) == 60
    assert (tmp_path / "worker0" / "model.keras").is_file()
    assert not (tmp_path / "worker1").exists()
    assert "worker 1: done; the chief writes the outputs" in outputs[1]


ERRORS_SCRIPT = '''
import numpy as np, pytest, tensorflow as tf
from keras_deepclust.backup import ClusteringBackup
from keras_deepclust.models import AEC
strategy = tf.distribute.MultiWorkerMirroredStrategy()  # one local worker: no TF_CONFIG
x = np.random.default_rng(0).random((40, 6)).astype("float32")
with strategy.scope():
    model = AEC(3, hidden_units=(8,), embedding_dim=2, random_state=0)
for call, message in [
    (lambda: model.fit(x, validation_data=x, epochs=1, batch_size=8, verbose=0),
     "fit takes no validation data"),
    (lambda: model.fit(x, epochs=1, batch_size=64, verbose=0),
     "batch_size=64 is larger than the data \\\\(40 rows\\\\)"),
    (lambda: model.fit(tf.data.Dataset.from_tensor_slices(x).batch(8), epochs=1),
     "fit takes x as an array, not a dataset"),
    (lambda: model.pretrain(tf.data.Dataset.from_tensor_slices(x).batch(8), epochs=1),
     "Multi-worker pretraining takes x as an array"),
    (lambda: model.pretrain(x, epochs=1, batch_size=8, callbacks=[ClusteringBackup("b")]),
     "A pretraining backup needs x as an array on one machine"),
]:
    with pytest.raises(ValueError, match=message):
        call()
    print("refused:", message)
'''


def test_multi_worker_refuses_what_it_cannot_split(tmp_path):
    """Validation data, a batch larger than the data, streams and pretraining backups
    under MultiWorkerMirroredStrategy (in a child process: the strategy must be created
    before TensorFlow starts its runtime)."""
    result = subprocess.run([sys.executable, "-c", ERRORS_SCRIPT], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("refused:") == 5
