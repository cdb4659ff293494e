"""What the command line prints besides its results: the libraries' start-up lines and
logs hidden unless `--verbose`, and the package's warnings as one line for the user."""

import importlib.util
import logging
import os
import re
import sys
import tempfile
import warnings
from contextlib import contextmanager

# TensorFlow's C++ start-up lines (oneDNN's notice, CPU features). On some CPUs they come
# from absl before its log is initialised, which ignores TF_CPP_MIN_LOG_LEVEL.
STARTUP_LINE = re.compile(rb"(?:WARNING: All log messages before absl::InitializeLog\(\)"
                          rb"|[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] ).*")


def quiet_libraries():
    """Hide what the libraries print for their developers: TensorFlow's C++ start-up and
    oneDNN lines, TensorFlow's and absl's Python log below ERROR (retracing notices) and
    other packages' warnings (umap's n_jobs notice). The package's own warnings stay."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported
    for name in ("tensorflow", "absl", "numba", "py4j"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module=r"keras_deepclust(\.|$)")
    warnings.showwarning = show_warning


def show_warning(message, category, filename, lineno, file=None, line=None):
    """The package's warnings as one line for the user, without the source file and
    line that Python's format shows a developer."""
    print(f"keras-deepclust: warning: {message}", file=file or sys.stderr)


@contextmanager
def without_stderr_lines(pattern):
    """Captures file descriptor 2 (where C++ libraries print) during the block, then writes
    back every line but those `pattern` (bytes) matches whole, in order."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                captured.seek(0)
                kept = [line for line in captured.read().splitlines(keepends=True)
                        if not pattern.fullmatch(line.rstrip(b"\r\n"))]
                text = b"".join(kept)
                while text:
                    text = text[os.write(2, text):]
    finally:
        os.close(saved)


def import_tensorflow_quietly():
    """Imports TensorFlow, dropping its start-up lines from file descriptor 2 (errors and
    anything else stay)."""
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    with without_stderr_lines(STARTUP_LINE):
        import tensorflow  # noqa: F401
