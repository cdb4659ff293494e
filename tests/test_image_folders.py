"""Folders of images as users have them: class sub-folders as labels, resizing, colour
modes, streaming, and `fit` / `evaluate` / `assign` naming each image's file."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from keras_deepclust import cli, datasets, readers
from keras_deepclust.readers import images


def save(path, pixels, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels), mode).save(path)


def gray(value, size=(3, 4)):
    return np.full(size, value, np.uint8)


def test_class_subfolders_are_the_labels_in_sorted_order(tmp_path):
    save(tmp_path / "b" / "0.png", gray(10))
    save(tmp_path / "b" / "1.png", gray(20))
    save(tmp_path / "a" / "z.png", gray(30))
    save(tmp_path / "a" / "deeper" / "y.png", gray(40))
    save(tmp_path / ".thumbnails" / "t.png", gray(50))  # hidden: left out
    (tmp_path / "empty").mkdir()  # holds no image: not a class
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    assert datasets.identify(tmp_path).kind == "images"
    folder = images.image_folder(tmp_path)
    assert folder.class_names == ("a", "b")
    assert folder.relative_paths() == ["a/deeper/y.png", "a/z.png", "b/0.png", "b/1.png"]
    x, y = datasets.load(tmp_path)
    assert x.shape == (4, 3, 4, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0, 0, 0], np.array([40, 30, 10, 20]) / 255, rtol=1e-6)
    np.testing.assert_array_equal(y, [0, 0, 1, 1])
    # Without sub-folders: the images, sorted by name, no labels.
    x, y = datasets.load(tmp_path / "b")
    assert y is None and x[:, 0, 0, 0].tolist() == pytest.approx([10 / 255, 20 / 255])


def test_sizes_and_colour_modes(tmp_path):
    save(tmp_path / "0.png", gray(200, (4, 6)))
    save(tmp_path / "1.png", np.array([[[255, 0, 0], [0, 0, 255]]] * 2, np.uint8))  # 2 x 2 RGB
    with pytest.raises(ValueError, match=r"1.png is 2 x 2 pixels, the first image 0.png 4 x 6: "
                                         r"resize them alike, or .*--image-size HEIGHT WIDTH"):
        datasets.load(tmp_path)
    x, _ = datasets.load(tmp_path, image_size=(2, 3))
    assert x.shape == (2, 2, 3, 1)  # grayscale, as the first image
    np.testing.assert_allclose(x[0], 200 / 255, rtol=1e-6)  # a flat image stays flat
    # Pillow's luminance, L = (299 R + 587 G + 114 B) / 1000, for the red and blue pixels.
    x, _ = datasets.load(tmp_path, image_size=2)
    np.testing.assert_allclose(x[1, :, :, 0], [[76 / 255, 29 / 255]] * 2, atol=1 / 255)
    x, _ = datasets.load(tmp_path, image_size=(2, 2), color_mode="rgb")
    assert x.shape == (2, 2, 2, 3)
    np.testing.assert_allclose(x[1, 0], [[1, 0, 0], [0, 0, 1]])
    np.testing.assert_allclose(x[0], 200 / 255, rtol=1e-6)  # gray repeated in R, G and B
    # 16-bit grayscale is scaled by 65535, not clipped to 255.
    save(tmp_path / "wide" / "0.png", np.full((2, 2), 32768, np.uint16))
    save(tmp_path / "wide" / "1.png", np.full((2, 2), 65535, np.uint16))
    x, _ = datasets.load(tmp_path / "wide")
    np.testing.assert_allclose(x[:, 0, 0, 0], [32768 / 65535, 1.0], rtol=1e-6)


def test_bad_folders_and_options_are_refused_naming_them(tmp_path):
    save(tmp_path / "mixed" / "top.png", gray(1))
    save(tmp_path / "mixed" / "cats" / "c.png", gray(2))
    with pytest.raises(ValueError, match=r"mixed holds images both in itself \(top.png, ...\) "
                                         r"and in sub-folders \(cats\): put every image"):
        datasets.load(tmp_path / "mixed")
    save(tmp_path / "one" / "a" / "only.png", gray(1))
    with pytest.raises(ValueError, match=r"one holds 1 image\(s\) .*at least 2 are needed"):
        datasets.load(tmp_path / "one")
    save(tmp_path / "broken" / "0.png", gray(1))
    (tmp_path / "broken" / "1.png").write_bytes(b"\x89PNG cut short")
    with pytest.raises(ValueError, match=r"broken/1.png is not a readable image"):
        datasets.load(tmp_path / "broken")
    np.save(tmp_path / "x.npy", np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"x.npy is not a folder of images: an image size "
                                         r"applies to folders of images only"):
        datasets.load(tmp_path / "x.npy", image_size=(2, 2))
    with pytest.raises(ValueError, match=r"not a folder of images: a colour mode"):
        readers.records(tmp_path / "x.npy", color_mode="rgb")
    for size in [(0, 3), (2, 2, 2), "3x3"]:
        with pytest.raises(ValueError, match="image_size"):
            datasets.load(tmp_path / "broken", image_size=size)
    with pytest.raises(ValueError, match=r"color_mode must be 'auto' or one of"):
        datasets.load(tmp_path / "broken", color_mode="cmyk")
    with pytest.raises(ValueError, match=r"takes samples of shape \(6,\), not images"):
        images.options_for_input((6,), name="tables.onnx")
    assert images.options_for_input((8, 8, 3)) == ((8, 8), "rgb")


def test_a_folder_streams_as_it_loads(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(5):
        save(tmp_path / f"c{i % 2}" / f"{i}.png", rng.integers(0, 256, (4, 4), np.uint8))
    x, y = datasets.load(tmp_path)
    dataset, n = datasets.stream(tmp_path, batch_size=2)
    assert n == 5
    np.testing.assert_array_equal(np.concatenate(list(dataset.as_numpy_iterator())), x)
    assert readers.records(tmp_path).labels.tolist() == y.tolist() == [0, 0, 0, 1, 1]


def write_digit_folder(root, x, y):
    """`x` (n, 8, 8, 1) in [0, 1] as 8-bit PNGs in one sub-folder per class of `y`; one file
    name holds a comma and a space (quoted in the CSVs)."""
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        name = "a, b.png" if i == 1 else f"{i:03d}.png"
        save(root / f"class_{label}" / name, np.round(image[..., 0] * 255).astype(np.uint8))


def test_assign_names_each_image_and_reads_it_at_the_models_size(dcec_artifacts, tmp_path):
    from keras_deepclust.serving import ClusterAssigner
    from keras_deepclust.serving.batch import assign_file

    model, x, folder = dcec_artifacts
    y = np.arange(40) % 3
    write_digit_folder(tmp_path / "imgs", x[:40], y)
    assigner = ClusterAssigner(folder / "m.onnx")
    assert assign_file(assigner, tmp_path / "imgs", tmp_path / "out.csv", chunk_rows=16,
                       probabilities=True, progress=False) == 40
    rows = list(csv.DictReader(open(tmp_path / "out.csv", newline="")))
    expected_files = images.image_folder(tmp_path / "imgs").relative_paths()
    assert [r["file"] for r in rows] == expected_files and "class_1/a, b.png" in expected_files
    read, _ = datasets.load(tmp_path / "imgs")
    np.testing.assert_array_equal([int(r["cluster"]) for r in rows], model.predict_labels(read))
    assert [int(r["row"]) for r in rows] == list(range(40))
    # Colour images of another size are read as the model takes them: 8 x 8, grayscale.
    for i in range(3):
        save(tmp_path / "colour" / f"{i}.png", np.full((10, 12, 3), 60 * i, np.uint8))
    assign_file(assigner, tmp_path / "colour", tmp_path / "colour.csv", progress=False)
    lines = (tmp_path / "colour.csv").read_text().splitlines()
    assert lines[0] == "row,file,cluster" and lines[1].startswith("0,0.png,")
    flat = np.stack([np.full((8, 8, 1), 60 * i / 255, np.float32) for i in range(3)])
    assert [int(line.split(",")[2]) for line in lines[1:]] == model.predict_labels(flat).tolist()


def test_fit_and_evaluate_a_folder_of_images(tiny_images, tmp_path, capsys):
    x, y = tiny_images
    write_digit_folder(tmp_path / "imgs", x, y)
    out = tmp_path / "run"
    assert cli.main(["fit", "cae-kmeans", "--dataset", str(tmp_path / "imgs"), "--image-size",
                     "6", "6", "--pretrain-epochs", "1", "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "labels.csv", newline="")))
    assert [r["file"] for r in rows] == images.image_folder(tmp_path / "imgs").relative_paths()
    capsys.readouterr()
    # evaluate reads the folder at the model's input size (6 x 6), with no flag.
    assert cli.main(["evaluate", str(out / "model.keras"), "--dataset",
                     str(tmp_path / "imgs")]) == 0
    scores = json.loads(capsys.readouterr().out)
    from keras_deepclust import metrics

    labels = np.array([int(r["cluster"]) for r in rows])
    classes = datasets.load(tmp_path / "imgs")[1]  # the sub-folders, in row order
    assert scores == pytest.approx(metrics.clustering_scores(classes, labels))
