"""IMSAT (Hu et al., ICML 2017) as a screen for issue 30: a clustering with no decoder.

An MLP d-1200-1200-K (batch normalisation, ReLU) trained to maximise the mutual
information between a row and its cluster, H(Y) - H(Y|X), while its assignment stays
the same under virtual adversarial perturbations (VAT) of each row, sized to a fraction
(`--eps-scale`, IMSAT's 0.25) of the row's distance to its 10th nearest neighbour:

    loss = KL(p(y|x) || p(y|x + r_adv)) + lam * (H(Y|X) - mu * H(Y))

with IMSAT's lam 0.1, mu 4, 50 epochs of Adam (learning rate 0.002) on batches of 250,
on the pixels scaled to [-1, 1]. The labels are the argmax of the trained network.

    python benchmarks/imsat.py digits 0,1,2,3,4 --out benchmarks/results/imsat_digits.jsonl
    python benchmarks/imsat.py --summarise benchmarks/results/imsat_digits.jsonl

One JSON line per seed is appended to --out as it ends.
"""

import json
import time

import numpy as np

from pretrained import load_data, parser_for
from results_io import cpu_info, final_score_cells, read_json_lines


def neighbour_radius(points, k=10):
    """Each row's Euclidean distance to its k-th nearest other row."""
    from sklearn.neighbors import NearestNeighbors

    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    return distances[:, k].astype(np.float32)


def imsat(points, n_clusters, seed, epochs=50, batch_size=250, lam=0.1, mu=4.0,
          eps_scale=0.25, xi=10.0, learning_rate=0.002, hidden=(1200, 1200), log_every=10):
    """Trains IMSAT on `points` (n, d); returns `{epoch: labels}` every `log_every` epochs
    and at the end."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    layers = [keras.Input((points.shape[1],))]
    fan_in = points.shape[1]
    for width in hidden:
        init = keras.initializers.RandomNormal(stddev=0.1 * np.sqrt(2 / fan_in), seed=seed)
        layers += [keras.layers.Dense(width, kernel_initializer=init),
                   keras.layers.BatchNormalization(), keras.layers.ReLU()]
        fan_in = width
    layers.append(keras.layers.Dense(n_clusters, kernel_initializer=keras.initializers.RandomNormal(
        stddev=1e-4 * np.sqrt(2 / fan_in), seed=seed)))
    network = keras.Sequential(layers)
    optimizer = keras.optimizers.Adam(learning_rate)
    radius = eps_scale * neighbour_radius(points)

    def kl(p, q):
        return tf.reduce_mean(tf.reduce_sum(p * (tf.math.log(p + 1e-8) - tf.math.log(q + 1e-8)), 1))

    def entropy(p):
        return -tf.reduce_sum(p * tf.math.log(p + 1e-8), -1)

    def unit(d):
        return d / (tf.norm(d, axis=1, keepdims=True) + 1e-16)

    @tf.function
    def step(x, eps):
        p_clean = tf.stop_gradient(tf.nn.softmax(network(x, training=True)))
        d = unit(tf.random.normal(tf.shape(x)))
        with tf.GradientTape() as tape:
            tape.watch(d)
            divergence = kl(p_clean, tf.nn.softmax(network(x + xi * d, training=True)))
        r_adv = unit(tape.gradient(divergence, d)) * eps[:, None]
        with tf.GradientTape() as tape:
            p = tf.nn.softmax(network(x, training=True))
            smoothness = kl(tf.stop_gradient(p), tf.nn.softmax(network(x + r_adv, training=True)))
            conditional = tf.reduce_mean(entropy(p))
            marginal = entropy(tf.reduce_mean(p, 0))
            loss = smoothness + lam * (conditional - mu * marginal)
        grads = tape.gradient(loss, network.trainable_variables)
        optimizer.apply_gradients(zip(grads, network.trainable_variables))
        return loss

    rng = np.random.default_rng(seed)
    labels = {}
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(points))
        for start in range(0, len(points) - batch_size + 1, batch_size):
            rows = order[start:start + batch_size]
            step(tf.constant(points[rows]), tf.constant(radius[rows]))
        if epoch % log_every == 0 or epoch == epochs:
            labels[epoch] = np.argmax(network.predict(points, batch_size=1024, verbose=0), 1)
    return labels


def measure(dataset, seeds, out, max_rows, options):
    from keras_deepclust.metrics import clustering_scores

    x, y, n_clusters = load_data(dataset, max_rows)
    points = x.reshape(len(x), -1).astype(np.float32)
    points = 2 * (points - points.min()) / (points.max() - points.min()) - 1
    for seed in seeds:
        start = time.perf_counter()
        labels = imsat(points, n_clusters, seed, **options)
        seconds = time.perf_counter() - start
        final = labels[max(labels)]
        line = {"dataset": dataset, "seed": seed, "options": options, "machine": cpu_info()[0],
                "seconds": seconds, "final": clustering_scores(y, final),
                "by_epoch": {e: clustering_scores(y, l)["acc"] for e, l in labels.items()},
                "sizes": np.bincount(final, minlength=n_clusters).tolist()}
        with open(out, "a") as f:
            f.write(json.dumps(line) + "\n")
        print(dataset, seed, {e: round(a, 3) for e, a in line["by_epoch"].items()},
              f"{seconds:.0f} s", flush=True)


def summarise(paths):
    groups = {}
    for row in read_json_lines(paths):
        groups.setdefault((row["dataset"], json.dumps(row["options"], sort_keys=True)),
                          []).append(row)
    lines = ["| data | options | ACC | worst | NMI | ARI | seconds | seeds |",
             "|---|---|---|---|---|---|---|---|"]
    for (dataset, options), group in sorted(groups.items()):
        lines.append(f"| {dataset} | {options} | {final_score_cells(group, 'seconds')} |")
    return "\n".join(lines)


def main(argv=None):
    parser = parser_for(__doc__)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--lam", type=float, default=0.1)
    parser.add_argument("--mu", type=float, default=4.0)
    parser.add_argument("--eps-scale", type=float, default=0.25)
    args = parser.parse_args(argv)
    if args.summarise:
        print(summarise(args.summarise))
        return
    options = {"epochs": args.epochs, "lam": args.lam, "mu": args.mu,
               "eps_scale": args.eps_scale}
    measure(args.dataset, [int(s) for s in args.seeds.split(",")], args.out, args.max_rows,
            options)


if __name__ == "__main__":
    main()
