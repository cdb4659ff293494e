"""Data in as users have it: every reader of `keras_deepclust.readers` (numpy only), and
`stream`, which reads a source batch by batch as a `tf.data.Dataset`.

`load` reads a data set whole as `(x, y)`: `x` as stored (uint8 pixels stay uint8;
images as `(n, height, width, channels)`, tables as `(n, n_features)`) and int labels
`y` (or None). A value names a data set (`NAMED`), a folder (of IDX files, of images,
or of TFRecord shards written by `keras-deepclust convert`) or a file, by its suffix;
`identify` decides which, and `load`, `stream` and `tfrecords.convert` all ask it.
"""

import numpy as np

from keras_deepclust import readers
from keras_deepclust._validation import check_layout, check_positive_int
from keras_deepclust.readers import (  # noqa: F401 (the readers, re-exported)
    CONVERTED_META,
    DATA_DIR_ENV,
    IMAGE_SUFFIXES,
    LABEL_COLUMNS,
    MIN_SAMPLES,
    NAMED,
    DataNotFoundError,
    Records,
    Source,
    from_csv,
    from_idx,
    from_npy,
    from_npz,
    from_parquet,
    identify,
    image_files,
    load,
    load_digits,
    load_fashion_mnist,
    load_idx_directory,
    load_image_folder,
    load_mnist,
    load_usps,
    read_idx,
    read_image,
    read_npy_header,
    records,
    scale_to_unit,
)


def stream(path, batch_size=256, image_size=None, color_mode="auto"):
    """Batches of an `.npy` or IDX file (gzipped or not), a folder of IDX files (a
    named Fashion-MNIST or MNIST too) or of images, or a folder of TFRecord shards written by
    `keras-deepclust convert`, as a `tf.data.Dataset` read from disk as they are needed,
    so the data never has to fit in memory.

    Values are as stored, cast to float32 (a model learns its input scaling from a
    pass over the stream, as it does from arrays). Before the dataset is made, the
    headers are checked and a floating-point or gzipped file is read once, so that NaN,
    infinite values or a file cut short fail here, naming the file, row and column.

    Args:
        path: what `identify` takes, of the kinds above.
        batch_size: samples per batch.
        image_size, color_mode: how a folder of images is read
            (`readers.images.image_folder`); refused for any other source.

    Returns:
        `(dataset, n_samples)`: batches of float32 samples `(batch, *sample_shape)`.

    Example:

    ```python
    dataset, n = keras_deepclust.datasets.stream("train-images-idx3-ubyte.gz")
    model.pretrain(dataset, epochs=50)
    ```
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    source = identify(path)
    if source.kind == "converted":
        readers.sources.check_no_image_options(source, image_size, color_mode)
        from keras_deepclust import tfrecords  # reads TFRecord shards with TensorFlow

        dataset, n_samples = tfrecords.read(source.path, batch_size=batch_size)
        check_layout((n_samples, *dataset.element_spec.shape[1:]), np.float32,
                     name=str(source), min_samples=MIN_SAMPLES)
        return dataset, n_samples
    data = records(source, image_size=image_size, color_mode=color_mode)
    import tensorflow as tf

    dataset = tf.data.Dataset.from_generator(
        lambda: data.chunks(batch_size),
        output_signature=tf.TensorSpec((None, *data.sample_shape), tf.float32))
    return dataset.prefetch(tf.data.AUTOTUNE), data.n_samples
