"""Readers of data as users have it, numpy only (no TensorFlow, so the light `assign`
install reads with them too). Each returns `(x, y)`: `x` as stored (uint8 pixels stay
uint8; images as `(n, height, width, channels)`, tables as `(n, n_features)`) and int
labels `y` (or None when the source has none). The models learn their input scaling from
these raw values (`scaling=`), so what `fit` read is what `predict`, `assign` and
`serve` take.

Every reader refuses a bad file with a `ValueError` that names the file and what is
wrong with it, before any work starts: a file that is not of its format, cut short or
empty; samples that are not numbers, NaN or infinite; labels that are fractional or
missing; fewer than 2 samples.

One module per format: `idx` (MNIST's), `arrays` (`.npy`, `.npz`), `tables` (CSV,
Parquet), `usps` (`usps.h5`), `images` (folders of images), `named` (data sets by
name); `sources` decides what a path or name is and loads it whole, and `records` reads
`.npy` and IDX files chunk by chunk. TFRecord shards are read by `tfrecords.read`.
"""

from keras_deepclust.readers._files import MIN_SAMPLES, DataNotFoundError
from keras_deepclust.readers.arrays import from_npy, from_npz, read_npy_header
from keras_deepclust.readers.idx import from_idx, load_idx_directory, read_idx
from keras_deepclust.readers.images import (
    IMAGE_SUFFIXES,
    ImageFolder,
    image_files,
    image_folder,
    load_image_folder,
    read_image,
    scale_to_unit,
)
from keras_deepclust.readers.named import (
    DATA_DIR_ENV,
    NAMED,
    load_digits,
    load_fashion_mnist,
    load_mnist,
)
from keras_deepclust.readers.records import Records, records
from keras_deepclust.readers.sources import (
    CONVERTED_META,
    LABEL_COLUMNS,
    Source,
    identify,
    load,
)
from keras_deepclust.readers.tables import from_csv, from_parquet
from keras_deepclust.readers.usps import load_usps

__all__ = [
    "CONVERTED_META",
    "DATA_DIR_ENV",
    "DataNotFoundError",
    "IMAGE_SUFFIXES",
    "ImageFolder",
    "LABEL_COLUMNS",
    "MIN_SAMPLES",
    "NAMED",
    "Records",
    "Source",
    "from_csv",
    "from_idx",
    "from_npy",
    "from_npz",
    "from_parquet",
    "identify",
    "image_files",
    "image_folder",
    "load",
    "load_digits",
    "load_fashion_mnist",
    "load_idx_directory",
    "load_image_folder",
    "load_mnist",
    "load_usps",
    "read_idx",
    "read_image",
    "read_npy_header",
    "records",
    "scale_to_unit",
]
