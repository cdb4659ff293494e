"""Folders of images (PNG, JPEG, ...), read with Pillow.

A folder holds its images directly (no labels), or in one sub-folder per class, as
`keras.utils.image_dataset_from_directory` reads it: the sub-folders' names, sorted, are
the classes 0..C-1, and each image's label is its sub-folder's. Images are float32 in
[0, 1], `(height, width, channels)`: channels from the first image (1 for grayscale, 3
for colour, 4 with transparency) unless `color_mode` says, every image converted alike;
`image_size=(height, width)` resizes each one (bilinear), else they must all have the
first image's size.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_deepclust._validation import check_positive_int
from keras_deepclust.readers._files import MIN_SAMPLES, finish, import_for

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
COLOR_MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}
_CHANNELS = {"L": 1, "RGB": 3, "RGBA": 4}
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")  # 16-bit grayscale, scaled by 65535


def scale_to_unit(x):
    """Scales `x` to [0, 1]: uint8 pixels by 255; anything already within [0, 1] is
    kept; anything else is min-max scaled over the whole array. (The models scale
    their inputs themselves; this is for baselines on the pixels.)"""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    x = x.astype(np.float32)
    low, high = float(x.min()), float(x.max())
    if low >= 0.0 and high <= 1.0:
        return x
    return (x - low) / (high - low) if high > low else np.zeros_like(x)


def _is_image(path):
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def image_files(folder):
    """The image files directly in `folder` (`IMAGE_SUFFIXES`), sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if _is_image(p))


def class_folders(folder):
    """The sub-folders of `folder` holding images (at any depth), sorted by name, hidden
    ones (".name") left out: `{name: [image paths, sorted]}`."""
    classes = {}
    for sub in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
        if sub.name.startswith("."):
            continue
        paths = sorted(p for p in sub.rglob("*") if _is_image(p)
                       and not any(part.startswith(".") for part in p.relative_to(sub).parts))
        if paths:
            classes[sub.name] = paths
    return classes


def holds_images(folder):
    """Whether `folder` holds images directly or in class sub-folders."""
    return bool(image_files(folder)) or bool(class_folders(folder))


def check_image_size(image_size):
    """`image_size` as a `(height, width)` tuple of positive ints, or None."""
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    if not isinstance(image_size, (tuple, list)) or len(image_size) != 2:
        raise ValueError(f"image_size must be (height, width) or one int, got {image_size!r}.")
    return tuple(check_positive_int(v, "image_size") for v in image_size)


def _check_color_mode(color_mode):
    if color_mode != "auto" and color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be 'auto' or one of {sorted(COLOR_MODES)}, got "
                         f"{color_mode!r}.")
    return color_mode


def _open(path):
    """The decoded Pillow image at `path`; anything unreadable is refused naming it."""
    pil_image = import_for(path, "PIL.Image", "pillow")
    try:
        image = pil_image.open(path)
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError, pil_image.DecompressionBombError) as error:
        raise ValueError(f"{path} is not a readable image: {error}") from None
    return image


def _target_mode(image):
    """The mode every image is converted to, as the first image (`image`) suggests."""
    if image.mode in _GRAY_MODES:
        return "L"
    has_alpha = "A" in image.mode or "transparency" in image.info
    return "RGBA" if has_alpha else "RGB"


def read_image(path, image_size=None, mode=None):
    """One image as float32 `(height, width, channels)` in [0, 1], converted to Pillow's
    `mode` ("L", "RGB" or "RGBA"; None: as the image suggests) and resized to
    `image_size` `(height, width)` (bilinear) when given."""
    pil_image = import_for(path, "PIL.Image", "pillow")
    image = _open(path)
    mode = mode or _target_mode(image)
    if mode == "L" and image.mode in (*_WIDE_MODES, "F"):
        # Pillow's own conversion to "L" clips 16-bit values instead of scaling them.
        scale = 65535.0 if image.mode in _WIDE_MODES else 1.0
        image = pil_image.fromarray(np.asarray(image, dtype=np.float32) / scale)
    elif image.mode != mode:
        image = image.convert(mode)
    if image_size is not None and image.size != (image_size[1], image_size[0]):
        image = image.resize((image_size[1], image_size[0]), pil_image.Resampling.BILINEAR)
    pixels = np.asarray(image)
    pixels = pixels[..., np.newaxis] if pixels.ndim == 2 else pixels
    return pixels.astype(np.float32) / (255.0 if pixels.dtype == np.uint8 else 1.0)


@dataclass(frozen=True)
class ImageFolder:
    """The images of a folder, checked by `image_folder` (see the module's docstring).

    `paths` are the files in reading order, `labels` their class ids (None for a folder
    without class sub-folders) and `class_names` the sub-folders' names; `sample_shape`
    is `(height, width, channels)`. `chunks(rows)` reads them, never all at once.
    """

    folder: Path
    paths: tuple
    sample_shape: tuple
    mode: str
    resize: bool
    labels: np.ndarray = None
    class_names: tuple = ()

    @property
    def n_samples(self):
        return len(self.paths)

    def relative_paths(self):
        """The files' paths relative to the folder ("class/name.png"), in row order."""
        return [p.relative_to(self.folder).as_posix() for p in self.paths]

    def read(self, path):
        """One image, as `chunks` reads it; one of another size is refused."""
        image = read_image(path, self.sample_shape[:2] if self.resize else None, self.mode)
        if image.shape != self.sample_shape:
            raise ValueError(
                f"{path} is {image.shape[0]} x {image.shape[1]} pixels, the first image "
                f"{self.paths[0].relative_to(self.folder)} {self.sample_shape[0]} x "
                f"{self.sample_shape[1]}: resize them alike, or read them with an image size "
                "(--image-size HEIGHT WIDTH).")
        return image

    def chunks(self, rows):
        """float32 arrays of at most `rows` images, in the order of `paths`."""
        for start in range(0, self.n_samples, rows):
            yield np.stack([self.read(p) for p in self.paths[start:start + rows]])

    def check_values(self):
        """Decodes every image once, so that a damaged file or one of another size fails
        before any work starts, not in the middle of training."""
        for path in self.paths:
            self.read(path)


def options_for_input(sample_shape, name="the model"):
    """`(image_size, color_mode)` that read a folder of images as a model with input
    samples of `sample_shape` `(height, width, channels)` takes them; any other input
    shape is refused naming `name`."""
    modes = {channels: color_mode for color_mode, channels in
             ((c, _CHANNELS[m]) for c, m in COLOR_MODES.items())}
    if len(sample_shape) != 3 or sample_shape[-1] not in modes:
        raise ValueError(f"{name} takes samples of shape {tuple(sample_shape)}, not images "
                         "(height, width, 1, 3 or 4 channels): a folder of images is not "
                         "its data.")
    return tuple(sample_shape[:2]), modes[sample_shape[-1]]


def image_folder(folder, image_size=None, color_mode="auto"):
    """The checked `ImageFolder` of `folder`: its images, directly or in class sub-folders
    (not both), at least 2 of them. Only the first image is decoded here; see
    `ImageFolder.check_values`.

    Args:
        folder: the folder.
        image_size: `(height, width)` (or one int for both) to resize every image to;
            None: every image must have the first one's size.
        color_mode: "auto" (the first image's: grayscale, rgb or rgba), "grayscale",
            "rgb" or "rgba".
    """
    folder = Path(folder)
    image_size = check_image_size(image_size)
    color_mode = _check_color_mode(color_mode)
    flat, classes = image_files(folder), class_folders(folder)
    if flat and classes:
        raise ValueError(f"{folder} holds images both in itself ({flat[0].name}, ...) and in "
                         f"sub-folders ({', '.join(classes)}): put every image in a class "
                         "sub-folder, or none.")
    if classes:
        paths = [p for class_paths in classes.values() for p in class_paths]
        labels = np.repeat(np.arange(len(classes)), [len(v) for v in classes.values()])
    else:
        paths, labels = flat, None
    if len(paths) < MIN_SAMPLES:
        raise ValueError(f"{folder} holds {len(paths)} image(s) ({', '.join(IMAGE_SUFFIXES)}), "
                         f"directly or in class sub-folders; at least {MIN_SAMPLES} are needed.")
    first = _open(paths[0])
    mode = COLOR_MODES.get(color_mode) or _target_mode(first)
    size = image_size or (first.size[1], first.size[0])
    return ImageFolder(folder, tuple(paths), (*size, _CHANNELS[mode]), mode,
                       image_size is not None, labels, tuple(classes))


def load_image_folder(folder, image_size=None, color_mode="auto"):
    """The images of `folder` (see `image_folder`) read whole: `(x, y)`, x float32
    `(n, height, width, channels)` in [0, 1], y the class ids of the sub-folders (None
    without sub-folders)."""
    images = image_folder(folder, image_size, color_mode)
    return finish(np.concatenate(list(images.chunks(1024))), images.labels, folder)
