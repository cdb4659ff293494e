"""DEC, ours (Keras 3 / TensorFlow) against ClustPy (PyTorch), side by side on CPU.

    python benchmarks/clustpy_speed.py --seeds 0 1 2 --limited-run always --limited-threads 1

with ClustPy in a venv of its own, by default /work/clustpy-venv (`--clustpy-python`):

    python3 -m venv /work/clustpy-venv
    /work/clustpy-venv/bin/pip install torch==2.13.0
    echo torch==2.13.0 > /tmp/c.txt && /work/clustpy-venv/bin/pip install -c /tmp/c.txt clustpy

Both sides fit the same DEC: a d-500-500-2000-10 ReLU autoencoder (d = 64 for digits),
batch 256, 20 pretraining epochs (Adam, lr 1e-3, squared error), k-means on the codes, then 20
clustering epochs (Adam, lr 1e-4: ClustPy's default, set on ours by compiling). Every fit
runs in a fresh process of its own (ours with this interpreter, ClustPy with
`--clustpy-python`, a separate venv holding `torch` and `clustpy`, never a dependency of
this project), so each pays its own first-use costs; the order alternates per seed (ours
first on even seeds, ClustPy first on odd ones). Timed: from building the model to having
the labels (pretraining + k-means initialisation + clustering + final labels), measured
inside the child, so interpreter start-up and imports are excluded (reported apart).

The data go to the children as a temporary .npy. With `--side clustpy` this file is the
ClustPy child itself and imports only numpy, torch and clustpy.

Writes `results/clustpy_speed.json` (every run) and `results/clustpy_speed.md`.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
LAYERS_HIDDEN = (500, 500, 2000)
EMBEDDING = 10
N_CLUSTERS = 10


# ---------------------------------------------------------------- children
def _thread_info_threadpoolctl():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [{"api": p.get("user_api"), "lib": p.get("internal_api"), "threads": p.get("num_threads")}
            for p in threadpool_info()]


def run_ours(args, x, seed):
    start = time.perf_counter()
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras

    from keras_deepclust.models import DEC
    imports = time.perf_counter() - start
    keras.mixed_precision.set_global_policy(args.precision)

    phases = {}
    t0 = time.perf_counter()
    model = DEC(n_clusters=N_CLUSTERS, hidden_units=LAYERS_HIDDEN, embedding_dim=EMBEDDING,
                activation="relu", update_interval=args.update_interval, tol=0.0,
                n_init=args.n_init, random_state=seed)
    model.pretrain(x, epochs=args.pretrain_epochs, batch_size=args.batch_size,
                   optimizer=keras.optimizers.Adam(args.pretrain_lr), verbose=0)
    t1 = time.perf_counter()
    phases["pretrain"] = t1 - t0
    model.initialize_centroids(x, batch_size=args.batch_size)
    t2 = time.perf_counter()
    phases["kmeans_init"] = t2 - t1
    # fit() would compile with Adam(1e-3); ClustPy's clustering phase uses lr 1e-4.
    model.compile(optimizer=keras.optimizers.Adam(args.clustering_lr), jit_compile=False)
    model.fit(x, epochs=args.clustering_epochs, batch_size=args.batch_size, verbose=0)
    t3 = time.perf_counter()
    phases["clustering"] = t3 - t2
    labels = model.predict_labels(x, batch_size=args.batch_size)
    t4 = time.perf_counter()
    phases["final_labels"] = t4 - t3
    updates = model.target_updater.updates
    return {
        "labels": labels.tolist(),
        "seconds": t4 - t0,
        "phases": phases,
        "imports_s": imports,
        "target_refreshes": len(updates),
        "threads": {
            "tf_intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "tf_inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
            "cpu_count": os.cpu_count(),
            "threadpoolctl": _thread_info_threadpoolctl(),
        },
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "keras_deepclust": _ours_version(), "numpy": np.__version__,
                     "sklearn": _sklearn_version(), "python": sys.version.split()[0]},
    }


def _ours_version():
    try:
        import keras_deepclust
        return getattr(keras_deepclust, "__version__", "?")
    except ImportError:
        return "?"


def _sklearn_version():
    import sklearn
    return sklearn.__version__


_TORCHVISION_STUB = []


def _let_torchvision_import(torch):
    """PyPI's torchvision wheels are CUDA builds: next to the CPU torch their C ops
    (`_C.so`, linked to libtorch_cuda) cannot load, and `import torchvision`, which
    ClustPy does at import, then fails registering fake kernels for `torchvision::nms`
    and `qnms`. DEC uses no torchvision op, so without the library this defines just
    those two schemas (no kernels) so that the import goes through.

    Returns:
        True when the stub was needed.
    """
    import glob
    import importlib.util

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    libraries = glob.glob(os.path.join(spec.submodule_search_locations[0], "_C*.so"))
    try:
        if libraries:
            torch.ops.load_library(libraries[0])
            return False
    except OSError:
        pass
    library = torch.library.Library("torchvision", "DEF")
    library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _TORCHVISION_STUB.append(library)  # keep the registration alive
    return True


def run_clustpy(args, x, seed):
    os.environ.setdefault("TQDM_DISABLE", "1")  # like verbose=0 on ours
    start = time.perf_counter()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(args.threads)
    torchvision_stub = _let_torchvision_import(torch)
    import clustpy
    import clustpy.deep._train_utils as train_utils
    from clustpy.deep import DEC
    from clustpy.deep.dec import _DEC_Module
    from clustpy.deep.neural_networks import FeedforwardAutoencoder
    from clustpy.deep.neural_networks._abstract_neural_network import _AbstractNeuralNetwork
    imports = time.perf_counter() - start

    # Per-phase times through thin wrappers around ClustPy's own steps.
    phases = {"pretrain": 0.0, "kmeans_init": 0.0, "clustering": 0.0}

    def timing(function, phase):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                phases[phase] += time.perf_counter() - t
        return wrapper

    _AbstractNeuralNetwork.fit = timing(_AbstractNeuralNetwork.fit, "pretrain")
    train_utils.encode_batchwise = timing(train_utils.encode_batchwise, "kmeans_init")
    train_utils.run_initial_clustering = timing(train_utils.run_initial_clustering, "kmeans_init")
    _DEC_Module.fit = timing(_DEC_Module.fit, "clustering")

    network = (FeedforwardAutoencoder, {
        "layers": [x.shape[1], *LAYERS_HIDDEN, EMBEDDING], "activation_fn": torch.nn.ReLU})
    t0 = time.perf_counter()
    dec = DEC(n_clusters=N_CLUSTERS, batch_size=args.batch_size,
              pretrain_optimizer_params={"lr": args.pretrain_lr},
              clustering_optimizer_params={"lr": args.clustering_lr},
              pretrain_epochs=args.pretrain_epochs, clustering_epochs=args.clustering_epochs,
              optimizer_class=torch.optim.Adam, neural_network=network,
              embedding_size=EMBEDDING, device="cpu", random_state=seed)
    dec.fit(x)
    total = time.perf_counter() - t0
    # What is left: DEC labels, codes and the final k-means re-clustering (labels_).
    phases["final_labels"] = total - sum(phases.values())
    import sklearn
    return {
        "labels": np.asarray(dec.dec_labels_).tolist(),
        "kmeans_labels": np.asarray(dec.labels_).tolist(),
        "seconds": total,
        "phases": phases,
        "imports_s": imports,
        "threads": {
            "torch_intra_op": torch.get_num_threads(),
            "torch_inter_op": torch.get_num_interop_threads(),
            "cpu_count": os.cpu_count(),
            "threadpoolctl": _thread_info_threadpoolctl(),
        },
        "torchvision_ops_stub": torchvision_stub,
        "versions": {"torch": torch.__version__, "clustpy": clustpy.__version__,
                     "numpy": np.__version__, "sklearn": sklearn.__version__,
                     "python": sys.version.split()[0]},
    }


def child_main(args):
    x = np.load(args.data)
    result = (run_ours if args.side == "ours" else run_clustpy)(args, x, args.seed)
    tmp = args.result + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, args.result)


# ---------------------------------------------------------------- parent
def parse_variant(text):
    """"T:N[:POLICY]" -> (update_interval T, k-means n_init N, Keras dtype policy) for
    our side; the policy defaults to float32."""
    interval, n_init, *policy = text.split(":")
    return int(interval), int(n_init), policy[0] if policy else "float32"


def variant_name(side, variant=None):
    if side == "clustpy":
        return "ClustPy"
    policy = "" if variant[2] == "float32" else f" {variant[2]}"
    return f"ours T={variant[0]} n_init={variant[1]}{policy}"


def launch(args, side, seed, data_path, workdir, variant=None, threads=0):
    python = sys.executable if side == "ours" else args.clustpy_python
    result_path = os.path.join(workdir, f"{side}_{seed}_{threads}_{time.monotonic_ns()}.json")
    command = [python, str(Path(__file__).resolve()), "--side", side, "--seed", str(seed),
               "--data", data_path, "--result", result_path, "--threads", str(threads)]
    for name in ("pretrain_epochs", "clustering_epochs", "batch_size", "pretrain_lr",
                 "clustering_lr"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    if variant is not None:
        command += ["--update-interval", str(variant[0]), "--n-init", str(variant[1]),
                    "--precision", variant[2]]
    env = dict(os.environ, TQDM_DISABLE="1", TF_CPP_MIN_LOG_LEVEL="2")
    if threads:  # OpenMP/BLAS too: torch's intra-op pool and scikit-learn's k-means
        env.update({name: str(threads) for name in (
            "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    process = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        sys.stderr.write(process.stdout + process.stderr)
        raise RuntimeError(f"{side} seed {seed} failed with exit code {process.returncode}")
    with open(result_path) as f:
        result = json.load(f)
    os.remove(result_path)
    result.update(side=side, variant=variant_name(side, variant), seed=seed,
                  threads_limit=threads or None, process_wall_s=wall,
                  startup_and_imports_s=wall - result["seconds"],
                  loadavg_1min_before=load_before, loadavg_1min_after=os.getloadavg()[0])
    if variant is not None:
        result.update(update_interval=variant[0], n_init=variant[1], precision=variant[2])
    return result


def score(runs, y):
    from keras_deepclust.metrics import cluster_accuracy, normalized_mutual_info

    for run in runs:
        labels = np.asarray(run.pop("labels"))
        run["acc"] = float(cluster_accuracy(y, labels))
        run["nmi"] = float(normalized_mutual_info(y, labels))
        if "kmeans_labels" in run:
            labels = np.asarray(run.pop("kmeans_labels"))
            run["kmeans_relabel_acc"] = float(cluster_accuracy(y, labels))
            run["kmeans_relabel_nmi"] = float(normalized_mutual_info(y, labels))


def mean_std(values):
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def summarise(runs, variant):
    runs = [r for r in runs if r["variant"] == variant and r["threads_limit"] is None]
    out = {"n": len(runs)}
    for key in ("seconds", "acc", "nmi", "imports_s", "startup_and_imports_s"):
        out[key] = mean_std([r[key] for r in runs])
    for phase in runs[0]["phases"]:
        out[f"phase_{phase}"] = mean_std([r["phases"][phase] for r in runs])
    return out


def effective_threads(run):
    t = run["threads"]
    if run["side"] == "ours":
        cpu = t["cpu_count"]
        return [t["tf_intra_op"] or cpu, t["tf_inter_op"] or cpu]
    return [t["torch_intra_op"], t["torch_inter_op"]]


def fmt(pair, digits=2):
    return f"{pair[0]:.{digits}f} ± {pair[1]:.{digits}f}"


def write_atomic(path, text):
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def markdown(report):
    s = report["settings"]
    summary = report["summary"]
    lines = [
        f"# DEC on {s['dataset']}: keras-deepclust against ClustPy (CPU)",
        "",
        f"`{report['command']}`",
        "",
        f"{s['dataset']} {s['n_samples']}x{s['n_features']}, seeds {s['seeds']}, every fit in a "
        f"fresh process, order alternating per seed (ours first on even seeds); "
        f"{s['pretrain_epochs']} pretraining ({s['pretrain_optimizer']}) + "
        f"{s['clustering_epochs']} clustering epochs ({s['clustering_optimizer']}), batch "
        f"{s['batch_size']}, network {s['network']}; ours with tol 0, T = update_interval, "
        f"n_init = k-means restarts; ClustPy: P from each batch, k-means n_init 1 (sklearn "
        f"default). {report['machine']['cpu_count']} CPUs shared with other jobs (1-min load "
        f"average {report['machine']['loadavg_start']:.2f} at start, "
        f"{report['machine']['loadavg_end']:.2f} at end).",
        "",
        "Seconds from building the model to having the labels, mean ± std over seeds; "
        "interpreter start-up and imports are outside it (own column).",
        "",
        "| side | total s | pretrain s | k-means init s | clustering s | final labels s "
        "| start-up + imports s | ACC | NMI | ClustPy s / this |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    theirs = summary["ClustPy"]["seconds"][0]
    for name in report["variants"]:
        summ = summary[name]
        lines.append(
            f"| {name} | {fmt(summ['seconds'])} | {fmt(summ['phase_pretrain'])} | "
            f"{fmt(summ['phase_kmeans_init'])} | {fmt(summ['phase_clustering'])} | "
            f"{fmt(summ['phase_final_labels'])} | {fmt(summ['startup_and_imports_s'])} | "
            f"{fmt(summ['acc'], 3)} | {fmt(summ['nmi'], 3)} | "
            f"{theirs / summ['seconds'][0]:.2f} |")
    limited = [r for r in report["runs"] if r["threads_limit"]]
    if limited:
        n = limited[0]["threads_limit"]
        theirs_limited = next(r["seconds"] for r in limited if r["side"] == "clustpy")
        lines += ["", f"Extra round, seed {limited[0]['seed']}, both sides limited to {n} "
                  f"thread(s) (TF/torch intra- and inter-op, OMP/OpenBLAS/MKL_NUM_THREADS):", "",
                  "| side | total s | pretrain s | k-means init s | clustering s | ClustPy s / this |",
                  "|---|---|---|---|---|---|"]
        for r in limited:
            p = r["phases"]
            lines.append(f"| {r['variant']} | {r['seconds']:.2f} | {p['pretrain']:.2f} | "
                         f"{p['kmeans_init']:.2f} | {p['clustering']:.2f} | "
                         f"{theirs_limited / r['seconds']:.2f} |")
    lines += ["", "ClustPy s / this > 1: this side is faster. Per run:", "",
              "| seed | order | side | threads | total s | pretrain s | k-means s | clustering s "
              "| final s | ACC | NMI | load before |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["runs"]:
        p = r["phases"]
        lines.append(
            f"| {r['seed']} | {r['order']} | {r['variant']} | {r['threads_limit'] or 'default'} | "
            f"{r['seconds']:.2f} | {p['pretrain']:.2f} | {p['kmeans_init']:.2f} | "
            f"{p['clustering']:.2f} | {p['final_labels']:.2f} | {r['acc']:.3f} | {r['nmi']:.3f} | "
            f"{r['loadavg_1min_before']:.2f} |")
    t = report["threads"]
    lines += ["", f"Threads at defaults (intra-op, inter-op): ours TF "
              f"{t['ours']['effective_intra_inter']} (config {t['ours']['tf_intra_op']}, "
              f"{t['ours']['tf_inter_op']} = default), ClustPy torch "
              f"{t['clustpy']['effective_intra_inter']}; scikit-learn's k-means uses "
              f"OpenMP with {_openmp_threads(t['ours'])} threads on both sides."
              + ("" if s["limited_threads_run"] else
                 " Equal defaults, so no extra thread-limited run."),
              "", "Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()), ""]
    return "\n".join(lines)


def _openmp_threads(threads):
    counts = {p["threads"] for p in threads.get("threadpoolctl") or [] if p["api"] == "openmp"}
    return ", ".join(map(str, sorted(counts))) or "?"


def parent_main(args):
    from keras_deepclust import datasets

    x, y = datasets.load(args.dataset)
    x = datasets.scale_to_unit(x)  # pixels in [0, 1], as the committed runs had them
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(len(x), -1)
    y = np.asarray(y)
    variants = [parse_variant(v) for v in args.ours_variants]
    results_dir = Path(args.out_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    command = "python " + " ".join(shlex.quote(a) for a in [
        str(Path(sys.argv[0])), *sys.argv[1:]])
    load_start = os.getloadavg()[0]
    runs = []
    with tempfile.TemporaryDirectory() as workdir:
        data_path = os.path.join(workdir, "x.npy")
        np.save(data_path, x)

        def seed_runs(seed, threads=0, ours=variants):
            jobs = [("ours", v) for v in ours]
            jobs = jobs + [("clustpy", None)] if seed % 2 == 0 else [("clustpy", None)] + jobs
            for position, (side, variant) in enumerate(jobs):
                run = launch(args, side, seed, data_path, workdir, variant, threads)
                run["order"] = position + 1
                runs.append(run)
                phases = {k: round(v, 2) for k, v in run["phases"].items()}
                print(f"seed {seed} {run['variant']:24s} threads {threads or 'default'}: "
                      f"{run['seconds']:.2f} s {json.dumps(phases)}", flush=True)

        for seed in args.seeds:
            seed_runs(seed)
        default = [r for r in runs if r["threads_limit"] is None]
        ours_threads = effective_threads(next(r for r in default if r["side"] == "ours"))
        theirs_threads = effective_threads(next(r for r in default if r["side"] == "clustpy"))
        limited = args.limited_run == "always" or (
            args.limited_run == "auto" and ours_threads != theirs_threads)
        if limited:
            seed_runs(args.seeds[0], args.limited_threads)
    score(runs, y)
    first = {side: next(r for r in runs if r["side"] == side) for side in ("ours", "clustpy")}
    versions = {**{f"ours: {k}": v for k, v in first["ours"]["versions"].items()},
                **{f"ClustPy side: {k}": v for k, v in first["clustpy"]["versions"].items()}}
    names = [variant_name("ours", v) for v in variants] + ["ClustPy"]
    summary = {name: summarise(runs, name) for name in names}
    for name in names[:-1]:
        summary[name]["clustpy_over_this_seconds"] = (
            summary["ClustPy"]["seconds"][0] / summary[name]["seconds"][0])
    report = {
        "command": command,
        "machine": {"cpu_count": os.cpu_count(), "loadavg_start": load_start,
                    "loadavg_end": os.getloadavg()[0]},
        "settings": {
            "dataset": args.dataset, "n_samples": len(x), "n_features": x.shape[1],
            "seeds": args.seeds, "pretrain_epochs": args.pretrain_epochs,
            "clustering_epochs": args.clustering_epochs, "batch_size": args.batch_size,
            "pretrain_optimizer": f"Adam lr {args.pretrain_lr:g}",
            "clustering_optimizer": f"Adam lr {args.clustering_lr:g}",
            "network": f"{x.shape[1]}-{'-'.join(map(str, LAYERS_HIDDEN))}-{EMBEDDING} ReLU",
            "ours_variants": [{"update_interval": v[0], "n_init": v[1], "tol": 0.0,
                               "precision": v[2]}
                              for v in variants],
            "clustpy": {"target": "per batch, from the batch's own Q",
                        "kmeans_n_init": "sklearn default ('auto' = 1)",
                        "labels": "dec_labels_ (labels_ is a final k-means re-clustering, "
                                  "scored as kmeans_relabel_*)"},
            "limited_threads_run": limited,
        },
        "threads": {"ours": {"effective_intra_inter": ours_threads, **first["ours"]["threads"]},
                    "clustpy": {"effective_intra_inter": theirs_threads,
                                **first["clustpy"]["threads"]}},
        "versions": versions,
        "variants": names,
        "summary": summary,
        "runs": runs,
    }
    write_atomic(results_dir / f"{args.name}.json", json.dumps(report, indent=1) + "\n")
    write_atomic(results_dir / f"{args.name}.md", markdown(report))
    print(markdown(report))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--clustpy-python", default="/work/clustpy-venv/bin/python",
                        help="interpreter of a venv with torch and clustpy installed")
    parser.add_argument("--pretrain-epochs", type=int, default=20)
    parser.add_argument("--clustering-epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--pretrain-lr", type=float, default=1e-3)
    parser.add_argument("--clustering-lr", type=float, default=1e-4,
                        help="ClustPy's default for DEC's clustering phase")
    parser.add_argument("--ours-variants", nargs="+", default=["140:20", "140:1"],
                        help="our settings as T:N[:POLICY], T = update_interval (steps "
                             "between target refreshes; ClustPy: every batch, from the batch "
                             "itself), N = k-means n_init (ClustPy: sklearn's default, 1), "
                             "POLICY a Keras dtype policy (default float32; ClustPy: float32)")
    parser.add_argument("--threads", type=int, default=0,
                        help="0 = library defaults; N limits TF/torch intra- and inter-op "
                             "(and OpenMP/BLAS through the environment)")
    parser.add_argument("--limited-run", choices=("auto", "always", "never"), default="auto",
                        help="one extra round (first seed) with both sides limited to "
                             "--limited-threads; auto = only when the default thread counts "
                             "differ")
    parser.add_argument("--limited-threads", type=int, default=2)
    parser.add_argument("--out-dir", default=str(HERE / "results"))
    parser.add_argument("--name", default="clustpy_speed")
    # internal: child processes
    parser.add_argument("--side", choices=("parent", "ours", "clustpy"), default="parent",
                        help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--update-interval", type=int, default=140, help=argparse.SUPPRESS)
    parser.add_argument("--n-init", type=int, default=20, help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side == "parent":
        parent_main(args)
    else:
        child_main(args)


if __name__ == "__main__":
    main()
