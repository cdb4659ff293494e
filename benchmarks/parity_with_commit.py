"""Old and new side by side: every method that both an earlier commit and this checkout
register, fitted from the same seed on the same small data by each, and the earlier
commit's saved file loaded by this checkout.

    python benchmarks/parity_with_commit.py 8647a98 --out benchmarks/results/parity_8647a98.md

(run from the repository, with the package installed, e.g. `.venv/bin/python`).

For each method, the largest difference between the two fits' cluster probabilities
(a refactoring that keeps the computation gives 0) and between the earlier file's
predictions as it saved them and as this checkout loads them. The earlier commit's
package is taken with `git archive` into a temporary folder and run in its own process.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Run in a process whose package is either the earlier commit's (its folder first on
# sys.path) or this checkout's: fits every method, or loads the earlier files.
_WORKER = r'''
import json, sys, warnings
warnings.filterwarnings("ignore")
mode, package, folder = sys.argv[1:4]
if package:
    sys.path.insert(0, package)
import numpy as np
import keras
from keras_deepclust.models import get_method, list_methods

rng = np.random.default_rng(0)
y = np.repeat(np.arange(3), 30)
table = (rng.normal(0, 3, (3, 5))[y] + rng.normal(0, 0.5, (90, 5))).astype("float32")
images = rng.integers(0, 40, (90, 8, 8, 1)).astype("float32")
for i, label in enumerate(y):
    images[i, 4 * (label // 2):4 * (label // 2) + 4, 4 * (label % 2):4 * (label % 2) + 4] += 180
images = images.astype("uint8")
dense = {"hidden_units": (16,), "embedding_dim": 3}
conv = {"filters": (4, 8), "kernel_sizes": (3, 3), "embedding_dim": 3}
options = {"dac": {"hidden_units": (16, 8), "n_weight_samples": 100, "n_init": 2},
           "damic": {**dense, "clustering_units": (8,), "init_epochs": 2, "n_init": 2},
           "n2d": {**dense, "n_components": 2, "n_neighbors": 5},
           "auto": {**conv, "n_components": 2, "n_neighbors": 5}}
out = {}
for name in list_methods():
    path = f"{folder}/{name}.keras"
    if mode == "load":
        try:
            old = np.load(f"{folder}/{name}.npy")
        except FileNotFoundError:
            continue
        x = images if name in json.load(open(f"{folder}/images.json")) else table
        out[name] = float(np.abs(keras.saving.load_model(path).predict(x) - old).max())
        continue
    cls = get_method(name)
    on_images = cls(n_clusters=2).network in ("conv", "auto")
    x = images if on_images else table
    model = cls(n_clusters=3, random_state=0, **options.get(name, conv if on_images else dense))
    if hasattr(model, "pretrain"):
        model.pretrain(x, epochs=2, batch_size=32, verbose=0)
    model.fit(x, batch_size=32, verbose=0, **({"epochs": 2} if model.ITERATIVE_FIT else {}))
    probabilities = model.predict(x)
    np.save(f"{folder}/{name}.npy", probabilities)
    if mode == "fit-and-save":
        model.save(path)
    out[name] = on_images
json.dump(out, open(f"{folder}/{mode}.json", "w"))
if mode == "fit-and-save":
    json.dump([n for n, v in out.items() if v], open(f"{folder}/images.json", "w"))
'''


def run_worker(mode, package, folder):
    subprocess.run([sys.executable, "-c", _WORKER, mode, package, folder], check=True,
                   capture_output=True, text=True, cwd=folder)
    return json.loads((Path(folder) / f"{mode}.json").read_text())


def compare(commit):
    """`{method: {"fit": max |dp| between the two fits, "load": max |dp| of the old file}}`."""
    import numpy as np

    with tempfile.TemporaryDirectory() as work:
        old_package, old_runs, new_runs = (Path(work) / name for name in ("pkg", "old", "new"))
        for folder in (old_package, old_runs, new_runs):
            folder.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "keras_deepclust"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "x", "-C", str(old_package)], input=archive, check=True)
        run_worker("fit-and-save", str(old_package), str(old_runs))
        run_worker("fit", "", str(new_runs))
        loaded = run_worker("load", "", str(old_runs))
        rows = {}
        for npy in sorted(old_runs.glob("*.npy")):
            name = npy.stem
            new = new_runs / npy.name
            rows[name] = {
                "fit": float(np.abs(np.load(new) - np.load(npy)).max()) if new.exists() else None,
                "load": loaded.get(name)}
        return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("commit")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rows = compare(args.commit)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          check=True, capture_output=True, text=True).stdout.strip()
    if subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "keras_deepclust"]
                      ).returncode:
        head += " with uncommitted changes"
    lines = [f"Every method fitted by {args.commit} and by {head} (seed 0, 90 rows, 2 + 2 "
             f"epochs, float32), and {args.commit}'s file loaded by {head}: the largest "
             "difference of the cluster probabilities.", "",
             "| method | two fits | old file loaded |", "|---|---|---|"]
    lines += [f"| {name} | {row['fit']:.3g} | {row['load']:.3g} |" for name, row in rows.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
