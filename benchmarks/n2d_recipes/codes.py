"""Pretrains N2D's autoencoder on all rows of a data set for seeds 0-2 and saves the codes,
for `sweep.py` to try UMAP / mixture settings on without pretraining again.

    python benchmarks/n2d_recipes/codes.py DATASET NETWORK EPOCHS NOISE CACHE_DIR
"""

import sys
from pathlib import Path

import numpy as np

from keras_deepclust import datasets
from keras_deepclust.models import N2D

dataset, network, epochs, noise, cache = sys.argv[1:6]
x, y = datasets.load(dataset)
x = datasets.scale_to_unit(x)  # pixels in [0, 1], as the committed runs had them
for seed in (0, 1, 2):
    model = N2D(n_clusters=10, network=network, random_state=seed)
    model.pretrain(x, epochs=int(epochs), noise_stddev=float(noise), verbose=0)
    codes = model.encoder.predict(x, verbose=0)
    np.savez(Path(cache) / f"codes_{dataset}_{network}_{epochs}_{float(noise)}_{seed}.npz",
             z=codes, y=y)
    print("done", seed, flush=True)
