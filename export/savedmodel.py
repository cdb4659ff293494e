"""SavedModel writer in TF Serving's layout: BASE/NAME/VERSION/saved_model.pb."""

from keras_deepclust.export._common import (
    build_metadata,
    compare,
    float32_assigner,
    keras_reference,
    parity_sample,
)
from keras_deepclust.export._versions import check_new_version, new_version_folder
from keras_deepclust.serving.metadata import metadata_path, write_metadata


def export_savedmodel(model, base_dir, name="clusterer", version=None, sample=None,
                      include_embedding=False, metrics=None):
    """Writes `model.assigner()` as BASE/NAME/VERSION (a `serving_default` signature).

    The version folder is written under a temporary name in BASE/NAME and renamed once
    complete and checked, so a server watching BASE/NAME never sees half a model.
    NAME is added to BASE/models.config (base path `NAME`, relative to BASE), keeping the
    file's other entries and settings. The name, the folders, the version and an existing
    BASE/models.config are checked before any work.

    Args:
        model: a trained clustering model of this package.
        base_dir: the model base folder of TF Serving.
        name: the model's name (its folder under `base_dir`).
        version: an integer above every existing version; None takes the next one.
        sample: rows to check parity on (default: 64 rows of uniform noise).
        include_embedding: add the `embedding` output.
        metrics: scores to record in the metadata.

    Returns:
        The metadata dict (also written to VERSION/assets.extra/keras_deepclust.json).
    """
    import tensorflow as tf

    check_new_version(base_dir, name, version)
    assigner = float32_assigner(model, include_embedding=include_embedding)
    x = parity_sample(model, sample)
    reference = keras_reference(assigner, x)
    with new_version_folder(base_dir, name, version) as (folder, version):
        assigner.export(str(folder), format="tf_saved_model", verbose=False)
        serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
        outputs = {k: v.numpy() for k, v in serve(inputs=tf.constant(x)).items()}
        parity = compare(reference, outputs)
        metadata = build_metadata(model, folder, "savedmodel", parity, include_embedding, metrics)
        metadata.update({"model_name": name, "version": version})
        write_metadata(metadata_path(folder), metadata)
    return metadata
