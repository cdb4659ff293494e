"""Scaling figures for tf.distribute: measured single device vs MirroredStrategy over
two logical CPUs vs two worker processes on 127.0.0.1 (seconds per clustering epoch,
peak RSS, each in its own processes), and,
on paper, gradient bytes against compute per step for the SAE and the CAE on 8 GPUs
and on 8 machines.

    python benchmarks/scaling.py --epochs 5
"""

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

from results_io import write_results

# What the on-paper estimate assumes (fp32). Peak rates are not reached by small
# layers; the "effective" rate is a stated guess, so read the ratios, not the decimals.
GPU_EFFECTIVE_FLOPS = 7e12  # ~ half a V100/A10-class fp32 peak
LINKS = {"8 GPUs, NVLink (~150 GB/s bus)": 150e9, "8 machines, 10 GbE": 1.25e9,
         "8 machines, 100 GbE": 12.5e9}
DEVICES = 8
GLOBAL_BATCH = 256


def layer_macs(layer):
    """Multiply-accumulates of one forward pass of `layer` for one sample."""
    import keras

    if isinstance(layer, keras.layers.Dense):
        return int(layer.kernel.shape[0] * layer.kernel.shape[1])
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
        kh, kw, a, b = layer.kernel.shape  # Conv2DTranspose kernels are (kh, kw, out, in)
        spatial = layer.output.shape if isinstance(layer, keras.layers.Conv2D) else layer.input.shape
        return int(spatial[1] * spatial[2] * kh * kw * a * b)
    return 0


def on_paper(network):
    from keras_deepclust.models import DCEC, IDEC

    cls, shape = (IDEC, (784,)) if network == "dense" else (DCEC, (28, 28, 1))
    model = cls(n_clusters=10, random_state=0)
    model.build((None, *shape))
    params = sum(int(w.numpy().size) for w in model.trainable_weights)
    macs = sum(layer_macs(layer) for part in (model.encoder, model.decoder)
               for layer in part.layers)
    step_flops = 6 * macs * GLOBAL_BATCH  # 2 flops per MAC, x3 for forward + backward
    gradient_bytes = 4 * params
    row = {"network": network, "input": list(shape), "parameters": params,
           "forward_macs_per_sample": macs, "gradient_mb_per_step": gradient_bytes / 1e6,
           "compute_ms_per_step_on_one_gpu": 1e3 * step_flops / GPU_EFFECTIVE_FLOPS}
    for link, bandwidth in LINKS.items():
        # Ring all-reduce moves 2 (n - 1) / n of the gradient through each link.
        allreduce = 2 * (DEVICES - 1) / DEVICES * gradient_bytes / bandwidth
        compute = step_flops / DEVICES / GPU_EFFECTIVE_FLOPS
        row[link] = {"allreduce_ms": 1e3 * allreduce, "compute_ms": 1e3 * compute,
                     "comm_to_compute": allreduce / compute}
    return row


def measure(strategy_name, network, epochs, batch_size):
    """Runs in a child process: one clustering fit on the digits, timed."""
    import tensorflow as tf

    if strategy_name == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from keras_deepclust import datasets, distribute
    from keras_deepclust.models import DCEC, IDEC

    x, _ = datasets.load("digits")
    strategy = (distribute.get_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
                if strategy_name == "mirrored" else distribute.get_strategy(strategy_name))
    with strategy.scope():
        model = (IDEC if network == "dense" else DCEC)(n_clusters=10, random_state=0, tol=0.0)
    model.pretrain(x, epochs=1, batch_size=batch_size, verbose=0)
    model.fit(x, epochs=1, batch_size=batch_size, verbose=0)  # tracing and first refresh
    start = time.perf_counter()
    model.fit(x, epochs=1 + epochs, initial_epoch=1, batch_size=batch_size, verbose=0)
    seconds = (time.perf_counter() - start) / epochs
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"strategy": strategy_name, "replicas": strategy.num_replicas_in_sync,
            "network": network, "s_per_epoch": round(seconds, 3), "peak_rss_mb": round(peak_mb)}


def run_children(strategy, network, args):
    """One child process, or two worker processes with TF_CONFIG for "multiworker"
    (the chief's timing, the larger peak RSS)."""
    command = [sys.executable, __file__, "--child", strategy, network, "--epochs",
               str(args.epochs), "--batch-size", str(args.batch_size)]
    environments = [dict(os.environ)]
    if strategy == "multiworker":
        ports = []
        for _ in range(2):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                ports.append(s.getsockname()[1])
        cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
        environments = [dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": i}})) for i in range(2)]
    children = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 text=True) for env in environments]
    results = []
    for child in children:
        output = child.communicate()[0]
        if child.returncode:
            raise RuntimeError(f"{strategy} {network} failed: {output[-2000:]}")
        results.append(json.loads(output.strip().splitlines()[-1]))
    return dict(results[0], peak_rss_mb=max(r["peak_rss_mb"] for r in results),
                processes=len(results))


def table(rows, keys):
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row[k]) for k in keys) + " |")
    return "\n".join(lines)


def _cell(value):
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--child", nargs=2, metavar=("STRATEGY", "NETWORK"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(*args.child, args.epochs, args.batch_size)))
        return
    measured = []
    for network in ("dense", "conv"):
        for strategy in ("default", "mirrored", "multiworker"):
            measured.append(run_children(strategy, network, args))
            print(measured[-1], flush=True)
    paper = [on_paper(network) for network in ("dense", "conv")]
    flat = [{"network": r["network"], "link": link, **r[link]} for r in paper for link in LINKS]
    command = "python benchmarks/scaling.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = (
        f"Command: `{command}`\n\n## Measured on the digits (2 CPU cores)\n\n"
        + table(measured, ["network", "strategy", "processes", "replicas", "s_per_epoch",
                           "peak_rss_mb"])
        + "\n\n## On paper: one step of batch 256 on 8 devices (fp32)\n\n"
        + table(paper, ["network", "input", "parameters", "forward_macs_per_sample",
                        "gradient_mb_per_step", "compute_ms_per_step_on_one_gpu"])
        + "\n\n" + table(flat, ["network", "link", "allreduce_ms", "compute_ms", "comm_to_compute"])
        + f"\n\nAssumed: {GPU_EFFECTIVE_FLOPS / 1e12:g} TFLOP/s effective per GPU, ring all-reduce, "
        "6 flops per MAC per sample for forward + backward.\n"
    )
    write_results(args.out, "scaling", text, {"measured": measured, "on_paper": paper})
    print(text)


if __name__ == "__main__":
    main()
