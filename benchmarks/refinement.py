"""Refinements of `auto`'s partition that the exported model can carry (issue 30, lever 2).

Per seed: `auto`'s recipe (its autoencoder pretrained, UMAP + the most likely of 10
mixtures on the codes) gives the first partition. Each refinement then trains a copy of
the encoder with a softmax head (encoder -> Dense(K)) on augmented views, starting from
that partition, and labels every row by the head on the clean rows:

- `distill`: cross-entropy to the first partition itself, every row (the network
  learns to carry the partition; nothing is refreshed);
- `selflabel`: cross-entropy to the confident rows' labels (clean prediction above a
  threshold), refreshed every epoch (SCAN's self-labelling step, FixMatch's rule);
- `neighbors`: SCAN's clustering loss, the agreement of each row's assignment with a
  random one of its nearest neighbours in the pretrained code space, plus the entropy of
  the mean assignment (weight `entropy_weight`), which keeps clusters from merging;
- `neighbors+selflabel`: the first half of the epochs as `neighbors`, the rest as
  `selflabel`;
- `dec_da`: DEC-DA's clustering phase started from the partition: a Student-t head at
  the mean code of each cluster, KL(P || Q) with Q on augmented rows and the sharpened
  target P computed on the clean rows once an epoch;
- `aspc`: ASPC-DA's self-paced fine-tuning (Guo et al., 2019), encoder only: fixed
  centres at the mean code of each cluster; each epoch the encoder pulls the augmented
  codes of the selected rows onto their centre (MSE), then every row is relabelled by its
  nearest centre; all rows are selected in the first epoch, then those whose distance to
  their centre is below the mean distance plus epoch/epochs of a standard deviation (the
  easy rows first, more each epoch);
- `imsat`: IMSAT's objective on the softmax head: the KL divergence from the clean rows'
  assignments (held fixed) to their augmented views' (self-augmented training with
  shifts and rotations in place of VAT), plus lam * (H(Y|X) - mu * H(Y)) with the
  paper's lam 0.1 and mu 4.

Every head starts from the first partition: a few epochs of cross-entropy on the
mixture's labels with the encoder frozen.

    python benchmarks/refinement.py digits 0,1,2,3,4 --out benchmarks/results/refinement_digits.jsonl
    python benchmarks/refinement.py --summarise benchmarks/results/refinement_digits.jsonl

Pretrained autoencoders are cached in --cache (`pretrained.py`: by data set, seed and epochs), so a
second screen reuses them. One JSON line per (seed, variant) is appended to --out as it
ends.
"""

import itertools
import json
import time

import numpy as np

from pretrained import load_data, parser_for, pretrained_auto
from results_io import cpu_info, final_score_cells, read_json_lines

VARIANTS = ("distill", "selflabel", "neighbors", "neighbors+selflabel", "dec_da", "aspc", "imsat")


def first_partition(dataset, x, n_clusters, seed, pretrain_epochs, cache, precision):
    """`auto` pretrained (cached) and fitted: `(model, labels, posterior, seconds)`."""
    model, pretrain_seconds = pretrained_auto(dataset, x, n_clusters, seed, pretrain_epochs,
                                              cache, precision=precision)
    seconds = {} if pretrain_seconds is None else {"pretrain": pretrain_seconds}
    model.refine = False  # the partition before any refinement (`auto` now refines images)
    start = time.perf_counter()
    model.fit(x, verbose=0)
    seconds["umap_gmm"] = time.perf_counter() - start
    points = model.umap_embedding_.astype(np.float64)
    return model, model.clusterer_.predict(points), model.clusterer_.predict_proba(points), seconds


def refine(model, x, labels, variant, seed, epochs, batch_size=256, threshold=0.95,
           entropy_weight=2.0, n_neighbors=10, warm_epochs=5, learning_rate=1e-4,
           augment=True, lam=0.1, mu=4.0):
    """Trains a copy of `model`'s encoder with a softmax head from `labels`; returns the
    labels of the clean rows after each epoch."""
    import keras
    import tensorflow as tf
    from sklearn.neighbors import NearestNeighbors

    from keras_deepclust.layers import ImageAugmentation

    keras.utils.set_random_seed(seed)
    inputs = model.preprocess(x)
    k = int(labels.max()) + 1
    encoder = keras.models.clone_model(model.encoder)
    encoder.set_weights(model.encoder.get_weights())
    head = keras.Sequential([keras.Input((model.embedding_dim,)),
                             keras.layers.LayerNormalization(),
                             keras.layers.Dense(256, activation="relu"),
                             keras.layers.Dense(k)], name="softmax_head")
    images = inputs.ndim == 4
    if not augment:
        augmenter = keras.layers.Identity()
    elif images:
        augmenter = ImageAugmentation(seed=seed)
    else:
        augmenter = keras.layers.GaussianNoise(0.1, seed=seed)
    rng = np.random.default_rng(seed)
    if variant == "dec_da":
        return _dec_da(encoder, inputs, labels, k, augmenter, rng, epochs, batch_size,
                       learning_rate)
    if variant == "aspc":
        return _aspc(encoder, inputs, labels, k, augmenter, rng, epochs, batch_size,
                     learning_rate)

    def predict():
        return tf.nn.softmax(head(encoder.predict(inputs, batch_size=1024, verbose=0))).numpy()

    # Warm start: the head alone learns the first partition.
    codes = encoder.predict(inputs, batch_size=1024, verbose=0)
    warm = keras.Sequential([keras.Input((model.embedding_dim,)), head])
    warm.compile(keras.optimizers.Adam(1e-3),
                 keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    warm.fit(codes, labels, epochs=warm_epochs * 10, batch_size=batch_size, verbose=0)
    agreement = np.mean(predict().argmax(axis=1) == labels)
    print(f"warm start: the head reproduces {agreement:.3f} of the partition", flush=True)
    neighbours = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(codes).kneighbors(
        codes, return_distance=False)[:, 1:]

    optimizer = keras.optimizers.Adam(learning_rate)
    weights = encoder.trainable_variables + head.trainable_variables

    @tf.function
    def neighbour_step(a, b):
        with tf.GradientTape() as tape:
            p = tf.nn.softmax(head(encoder(augmenter(a, training=True), training=True)))
            q = tf.nn.softmax(head(encoder(augmenter(b, training=True), training=True)))
            agreement = -tf.reduce_mean(tf.math.log(tf.reduce_sum(p * q, axis=1) + 1e-8))
            mean = tf.reduce_mean(p, axis=0)
            entropy = -tf.reduce_sum(mean * tf.math.log(mean + 1e-8))
            loss = agreement - entropy_weight * entropy
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        return loss

    @tf.function
    def imsat_step(a):
        with tf.GradientTape() as tape:
            clean = tf.nn.softmax(head(encoder(a, training=True)))
            augmented = tf.nn.softmax(head(encoder(augmenter(a, training=True), training=True)))
            fixed = tf.stop_gradient(clean)
            smoothness = tf.reduce_mean(tf.reduce_sum(
                fixed * (tf.math.log(fixed + 1e-8) - tf.math.log(augmented + 1e-8)), axis=1))
            conditional = -tf.reduce_mean(tf.reduce_sum(clean * tf.math.log(clean + 1e-8), 1))
            mean = tf.reduce_mean(clean, axis=0)
            marginal = -tf.reduce_sum(mean * tf.math.log(mean + 1e-8))
            loss = smoothness + lam * (conditional - mu * marginal)
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        return loss

    @tf.function
    def selflabel_step(a, target):
        with tf.GradientTape() as tape:
            logits = head(encoder(augmenter(a, training=True), training=True))
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(target, logits))
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        return loss

    history = []
    for epoch in range(epochs):
        mode = variant
        if variant == "neighbors+selflabel":
            mode = "neighbors" if epoch < epochs // 2 else "selflabel"
        order = rng.permutation(len(inputs))
        if mode == "imsat":
            for start in range(0, len(order), batch_size):
                imsat_step(tf.constant(inputs[order[start:start + batch_size]]))
        elif mode == "distill":
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                selflabel_step(tf.constant(inputs[rows]), tf.constant(labels[rows]))
        elif mode == "selflabel":
            proba = predict()
            confident = order[proba[order].max(axis=1) >= threshold]
            target = proba.argmax(axis=1)
            for start in range(0, len(confident), batch_size):
                rows = confident[start:start + batch_size]
                selflabel_step(tf.constant(inputs[rows]), tf.constant(target[rows]))
        else:
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                partners = neighbours[rows, rng.integers(0, n_neighbors, len(rows))]
                neighbour_step(tf.constant(inputs[rows]), tf.constant(inputs[partners]))
        history.append(predict().argmax(axis=1))
    return history


def _dec_da(encoder, inputs, labels, k, augmenter, rng, epochs, batch_size, learning_rate):
    import keras
    import tensorflow as tf

    from keras_deepclust.layers.clustering import student_t_assignments
    from keras_deepclust.losses import kl_divergence, target_distribution

    codes = encoder.predict(inputs, batch_size=1024, verbose=0)
    centroids = tf.Variable(np.stack([codes[labels == j].mean(axis=0) for j in range(k)]))
    optimizer = keras.optimizers.Adam(learning_rate)
    weights = encoder.trainable_variables + [centroids]

    @tf.function
    def step(a, p):
        with tf.GradientTape() as tape:
            q = student_t_assignments(encoder(augmenter(a, training=True), training=True),
                                      centroids, 1.0)
            loss = tf.reduce_mean(kl_divergence(p, q))
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))

    def predict():
        return student_t_assignments(encoder.predict(inputs, batch_size=1024, verbose=0),
                                     centroids, 1.0).numpy()

    history = []
    for _ in range(epochs):
        target = target_distribution(predict()).numpy()
        order = rng.permutation(len(inputs))
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            step(tf.constant(inputs[rows]), tf.constant(target[rows]))
        history.append(predict().argmax(axis=1))
    return history


def _aspc(encoder, inputs, labels, k, augmenter, rng, epochs, batch_size, learning_rate):
    import keras
    import tensorflow as tf

    def distances_to(centres):
        codes = encoder.predict(inputs, batch_size=1024, verbose=0).astype(np.float64)
        return ((codes[:, None, :] - centres[None]) ** 2).sum(-1)

    codes = encoder.predict(inputs, batch_size=1024, verbose=0).astype(np.float64)
    centres = np.stack([codes[labels == j].mean(axis=0) for j in range(k)])
    targets = tf.constant(centres, tf.float32)
    optimizer = keras.optimizers.Adam(learning_rate)
    weights = encoder.trainable_variables

    @tf.function
    def step(a, assigned):
        with tf.GradientTape() as tape:
            z = tf.cast(encoder(augmenter(a, training=True), training=True), tf.float32)
            loss = tf.reduce_mean(tf.reduce_sum(tf.square(z - tf.gather(targets, assigned)), 1))
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))

    assigned, selected = labels, np.ones(len(inputs), bool)
    history = []
    for epoch in range(epochs):
        order = rng.permutation(len(inputs))
        order = order[selected[order]]
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            step(tf.constant(inputs[rows]), tf.constant(assigned[rows]))
        distances = distances_to(centres)
        assigned, nearest = distances.argmin(axis=1), distances.min(axis=1)
        selected = nearest < nearest.mean() + nearest.std() * (epoch + 1) / epochs
        history.append(assigned)
    return history


def label_free_signals(model, x, labels, history):
    """What a user without labels can see of a refinement: how much of the partition the
    codes carry before it (each row's nearest mean code, which the Student-t head starts
    from, against its cluster), how far the refined labels moved from the partition (ARI),
    the rows changed in the last epoch, and the partition's cluster sizes."""
    from sklearn.metrics import adjusted_rand_score

    codes = model.embed(x)
    means = np.stack([codes[labels == j].mean(axis=0) for j in range(int(labels.max()) + 1)])
    nearest = ((codes[:, None, :] - means[None]) ** 2).sum(-1).argmin(axis=1)
    return {"start_agreement": float(np.mean(nearest == labels)),
            "ari_with_first": float(adjusted_rand_score(labels, history[-1])),
            "last_epoch_changed": float(np.mean(history[-1] != history[-2]))
            if len(history) > 1 else None,
            # DEC-DA's stopping signal: the share of labels each epoch changed.
            "changed_by_epoch": [float(np.mean(a != b)) for a, b in zip(history, history[1:])],
            "first_sizes": np.bincount(labels).tolist()}


def measure(dataset, seeds, out, pretrain_epochs, epochs, variants, cache, max_rows, options,
            precision="float32"):
    from keras_deepclust.metrics import clustering_scores

    x, y, n_clusters = load_data(dataset, max_rows)
    for seed in seeds:
        model, labels, _, seconds = first_partition(dataset, x, n_clusters, seed,
                                                    pretrain_epochs, cache, precision)
        base = clustering_scores(y, labels)
        print(dataset, seed, "first partition", round(base["acc"], 3), flush=True)
        for variant in variants:
            start = time.perf_counter()
            history = refine(model, x, labels, variant, seed, epochs, **options)
            line = {"dataset": dataset, "seed": seed, "variant": variant, "epochs": epochs,
                    "pretrain_epochs": pretrain_epochs, "options": options,
                    "precision": precision,
                    "machine": cpu_info()[0], "first": base, "seconds": seconds,
                    "refine_seconds": time.perf_counter() - start,
                    "by_epoch": [clustering_scores(y, h)["acc"] for h in history],
                    "final": clustering_scores(y, history[-1]),
                    "sizes": np.bincount(history[-1], minlength=n_clusters).tolist(),
                    **label_free_signals(model, x, labels, history)}
            with open(out, "a") as f:
                f.write(json.dumps(line) + "\n")
            print(variant, seed, round(base["acc"], 3), "->", round(line["final"]["acc"], 3),
                  f"{line['refine_seconds']:.0f} s", flush=True)


def summarise(paths):
    rows = read_json_lines(paths)
    lines = ["| data | variant | options | first ACC | refined ACC | worst | NMI | ARI "
             "| refine s | seeds |", "|---|---|---|---|---|---|---|---|---|---|"]
    key = lambda r: (r["dataset"], r["variant"], json.dumps(r["options"], sort_keys=True),
                     r["epochs"])
    for (dataset, variant, options, epochs), group in itertools.groupby(
            sorted(rows, key=key), key=key):
        group = list(group)
        first = np.array([r["first"]["acc"] for r in group])
        lines.append(f"| {dataset} | {variant} ({epochs} ep) | {options} | {first.mean():.3f} ± "
                     f"{first.std():.3f} | {final_score_cells(group, 'refine_seconds')} |")
    return "\n".join(lines)


def seed_table(paths, variant="dec_da", epochs=60):
    """One row per (data set, augmentation, seed) of `variant` at `epochs`, with the
    label-free signals where they were recorded, then the mean gain per group."""
    rows = [r for r in read_json_lines(paths) if r["variant"] == variant and r["epochs"] == epochs]
    lines = ["| data | augmented | seed | partition ACC | refined ACC | gain | start | kept "
             "| refine s |", "|---|---|---|---|---|---|---|---|---|"]
    key = lambda r: (r["dataset"], r["options"]["augment"], r["seed"])
    gains = {}
    for r in sorted(rows, key=key):
        first, final = r["first"]["acc"], r["final"]["acc"]
        gains.setdefault(key(r)[:2], []).append(final - first)
        signals = [f"{r[k]:.3f}" if r.get(k) is not None else "—"
                   for k in ("start_agreement", "ari_with_first")]
        lines.append(f"| {r['dataset']} | {'yes' if r['options']['augment'] else 'no'} | "
                     f"{r['seed']} | {first:.4f} | {final:.4f} | {final - first:+.4f} | "
                     f"{' | '.join(signals)} | {r['refine_seconds']:.0f} |")
    lines.append("")
    for (dataset, augmented), values in gains.items():
        lines.append(f"- {dataset}{'' if augmented else ' (no augmentation)'}: gain "
                     f"{np.mean(values):+.4f} ± {np.std(values):.4f} over {len(values)} seeds, "
                     f"{sum(v > 0 for v in values)} of them positive")
    return "\n".join(lines)


def main(argv=None):
    parser = parser_for(__doc__)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--entropy-weight", type=float, default=2.0)
    parser.add_argument("--threshold", type=float, default=0.95)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--per-seed", action="store_true",
                        help="with --summarise: one row per seed of --variant at --epochs")
    parser.add_argument("--variant", default="dec_da", help="the variant --per-seed tabulates")
    args = parser.parse_args(argv)
    if args.summarise:
        print(seed_table(args.summarise, args.variant, args.epochs) if args.per_seed
              else summarise(args.summarise))
        return
    options = {"entropy_weight": args.entropy_weight, "threshold": args.threshold,
               "learning_rate": args.learning_rate, "augment": not args.no_augment}
    measure(args.dataset, [int(s) for s in args.seeds.split(",")], args.out,
            args.pretrain_epochs, args.epochs, args.variants.split(","), args.cache,
            args.max_rows, options, args.precision)


if __name__ == "__main__":
    main()
