"""An HTTP server that speaks TF Serving's REST API, backed by ONNX Runtime.

Clients written for TF Serving work unchanged:

- `POST /v1/models/NAME[/versions/V]:predict` with `{"instances": [...]}` (row format,
  answered with `{"predictions": [...]}`) or `{"inputs": ...}` (columnar, answered with
  `{"outputs": {...}}`);
- `GET /v1/models/NAME[/versions/V]`: version status;
- `GET /v1/models/NAME[/versions/V]/metadata`: the signature.

It serves the newest version under BASE/NAME (folders `VERSION/model.onnx` written by
`keras_deepclust.export.export_onnx_version`) and picks up a newer one when it appears;
version folders are renamed into place complete, and temporary ones (starting with '.')
are never read. Bad requests get `{"error": ...}` with status 400 and the server keeps
serving. Starlette + uvicorn; no TensorFlow.

    keras-deepclust serve artifacts/onnx --name digits --port 8501
"""

import contextlib
import json
import logging
import threading
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.routing import Route

from keras_deepclust._validation import check_positive_int
from keras_deepclust.serving.assigner import ClusterAssigner
from keras_deepclust.serving.metadata import ONNX_VERSION_FILE

logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_ROWS = 65_536  # rows per request
MAX_CONCURRENT = 32  # predict requests in progress; more are answered 503
INLINE_BODY_BYTES = 64 * 1024  # smaller requests are answered on the event loop itself


class BadRequest(ValueError):
    """A client error, answered with status 400."""


class NotFound(LookupError):
    """An unknown model or version, answered with status 404."""


class ModelWatcher:
    """Keeps the newest complete version of BASE/NAME loaded, polling for newer ones.

    Args:
        base_dir: TF Serving style model base folder.
        name: the model's folder name under `base_dir`.
        poll_seconds: how often to look for a new version.
        assigner_options: keyword arguments for `ClusterAssigner`.
    """

    def __init__(self, base_dir, name, poll_seconds=1.0, **assigner_options):
        self.model_dir = Path(base_dir) / name
        self.name = name
        self.poll_seconds = poll_seconds
        self.assigner_options = assigner_options
        self.version, self.assigner = None, None
        self.failed = {}  # version -> why it could not be loaded; never retried
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.refresh()
        if self.assigner is None:
            raise FileNotFoundError(
                f"No servable version under {self.model_dir}: expected VERSION/{ONNX_VERSION_FILE}."
            )
        self._thread = threading.Thread(target=self._poll, daemon=True, name=f"watch-{name}")
        self._thread.start()

    def _versions(self):
        if not self.model_dir.is_dir():
            return []
        return sorted(
            int(p.name) for p in self.model_dir.iterdir()
            if p.is_dir() and p.name.isdigit() and (p / ONNX_VERSION_FILE).is_file()
        )

    def refresh(self):
        """Loads the newest version if it is newer than the one served."""
        versions = self._versions()
        if not versions or versions[-1] == self.version or versions[-1] in self.failed:
            return
        newest = versions[-1]
        try:
            assigner = ClusterAssigner(self.model_dir / str(newest) / ONNX_VERSION_FILE,
                                       **self.assigner_options)
        except (OSError, ValueError) as error:  # keep serving the old version
            self.failed[newest] = str(error)
            logger.error("could not load %s version %s (still serving version %s): %s",
                         self.name, newest, self.version, error)
            return
        with self._lock:
            self.version, self.assigner = newest, assigner
        logger.info("serving %s version %s", self.name, newest)

    def _poll(self):
        while not self._stop.wait(self.poll_seconds):
            self.refresh()

    def stop(self):
        self._stop.set()

    def get(self, name, version=None):
        """`(version, assigner)` for a request, or `NotFound`."""
        if name != self.name:
            raise NotFound(f"Servable not found for request: Latest({name})")
        with self._lock:
            served = self.version, self.assigner
        if version is not None and version != str(served[0]):
            raise NotFound(f"Servable not found for request: Specific({name}, {version})")
        return served


def _instances_to_array(body):
    """The input batch of a predict request in either TF Serving format."""
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object.")
    signature = body.get("signature_name", "serving_default")
    if signature != "serving_default":
        raise BadRequest(f"Serving signature name: \"{signature}\" not found in signature def")
    if "instances" in body and "inputs" in body:
        raise BadRequest("Request must have either 'instances' or 'inputs', not both.")
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise BadRequest("'instances' must be a non-empty list.")
        if all(isinstance(row, dict) for row in rows):
            if any(set(row) != {"inputs"} for row in rows):
                raise BadRequest("Each named instance must have exactly the input 'inputs'.")
            rows = [row["inputs"] for row in rows]
        columnar = False
    elif "inputs" in body:
        rows = body["inputs"]
        if isinstance(rows, dict):
            if set(rows) != {"inputs"}:
                raise BadRequest("Named 'inputs' must have exactly the input 'inputs'.")
            rows = rows["inputs"]
        columnar = True
    else:
        raise BadRequest("Missing 'inputs' or 'instances' key")
    try:
        array = np.asarray(rows, dtype=np.float32)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise BadRequest("Inputs must be a rectangular array of numbers.") from None
    return array, columnar


async def _read_body(request, max_body_bytes):
    """The request body, refused as soon as it is known to exceed `max_body_bytes`."""
    too_large = BadRequest(f"Request body exceeds the limit of {max_body_bytes} bytes.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(raw_body):
    try:
        return json.loads(raw_body)
    except RecursionError:
        raise BadRequest("JSON Parse error: the body nests too deeply.") from None
    except ValueError as error:  # bad syntax or encoding, an integer of over 4,300 digits
        raise BadRequest(f"JSON Parse error: {error}") from None


def _predict(watcher, name, version, raw_body, max_rows):
    body = _parse_json(raw_body)
    served_version, assigner = watcher.get(name, version)
    x, columnar = _instances_to_array(body)
    if x.ndim and len(x) > max_rows:
        raise BadRequest(f"{len(x)} rows exceed the limit of {max_rows} rows per request: "
                         "send them in several requests.")
    try:
        outputs = assigner.assign(x)
    except ValueError as error:
        raise BadRequest(str(error)) from None
    if columnar:
        return {"outputs": {k: v.tolist() for k, v in outputs.items()}}
    names = list(outputs)
    rows = zip(*(outputs[k].tolist() for k in names))
    return {"predictions": [dict(zip(names, row)) for row in rows]}


def _status(version, failed):
    """TF Serving's version status: the served version AVAILABLE, each version that failed
    to load END with its error, newest first."""
    states = {version: ("AVAILABLE", "OK", "")}
    states.update({v: ("END", "UNKNOWN", message) for v, message in failed.items()})
    return {"model_version_status": [
        {"version": str(v), "state": state,
         "status": {"error_code": code, "error_message": message}}
        for v, (state, code, message) in sorted(states.items(), reverse=True)]}


def _signature(assigner):
    def tensor(dtype, shape, name):
        dims = [{"size": "-1" if s is None else str(s), "name": ""} for s in shape]
        return {"dtype": dtype, "tensor_shape": {"dim": dims, "unknown_rank": False}, "name": name}

    metadata = assigner.metadata
    outputs = {"probabilities": tensor("DT_FLOAT", [None, metadata["n_clusters"]], "probabilities"),
               "cluster": tensor("DT_INT32", [None], "cluster")}
    if "embedding" in metadata["outputs"]:
        outputs["embedding"] = tensor("DT_FLOAT", [None, None], "embedding")
    return {"signature_def": {"signature_def": {"serving_default": {
        "inputs": {"inputs": tensor("DT_FLOAT", metadata["input_shape"], "inputs")},
        "outputs": outputs,
        "method_name": "tensorflow/serving/predict",
    }}}}


def create_app(base_dir, name, poll_seconds=1.0, max_body_bytes=MAX_BODY_BYTES,
               max_rows=MAX_ROWS, max_concurrent=MAX_CONCURRENT, **assigner_options):
    """The Starlette application serving BASE/NAME (see the module documentation).

    The work one request can cause is bounded: a body over `max_body_bytes` or over
    `max_rows` rows gets a 400; while `max_concurrent` predict requests are in progress,
    further ones get a 503 with `Retry-After: 1`.
    """
    max_body_bytes = check_positive_int(max_body_bytes, "max_body_bytes")
    max_rows = check_positive_int(max_rows, "max_rows")
    max_concurrent = check_positive_int(max_concurrent, "max_concurrent")
    watcher = ModelWatcher(base_dir, name, poll_seconds=poll_seconds, **assigner_options)
    in_progress = 0  # handlers run on the one event loop: no lock needed

    def error(status, message):
        return JSONResponse({"error": message}, status_code=status)

    async def predict(request):
        nonlocal in_progress
        if in_progress >= max_concurrent:
            return JSONResponse(
                {"error": f"{in_progress} requests are in progress, the limit: retry shortly."},
                status_code=503, headers={"Retry-After": "1"})
        in_progress += 1
        try:
            return await _answer_predict(request)
        finally:
            in_progress -= 1

    async def _answer_predict(request):
        target = request.path_params["target"]
        if not target.endswith(":predict"):
            return error(404, f"Unknown method in {target!r}; only ':predict' is served.")
        model, _, version = target[: -len(":predict")].partition("/versions/")
        raw = b""
        try:
            raw = await _read_body(request, max_body_bytes)
            if len(raw) <= INLINE_BODY_BYTES:  # a few rows: a thread hop costs more than them
                answer = _predict(watcher, model, version or None, raw, max_rows)
            else:
                answer = await run_in_threadpool(_predict, watcher, model, version or None, raw,
                                                 max_rows)
            return JSONResponse(answer)
        except BadRequest as bad:
            return error(400, str(bad))
        except NotFound as missing:
            return error(404, str(missing))
        except Exception:  # the server's fault: logged, answered, the connection kept
            logger.exception("predict failed on a %d-byte request", len(raw))
            return error(500, "Internal error; the server's log has the details.")

    async def describe(request):
        parts = request.path_params["target"].split("/")
        want_metadata = parts[-1] == "metadata"
        if want_metadata:
            parts = parts[:-1]
        version = None
        if len(parts) == 3 and parts[1] == "versions":
            version = parts[2]
        elif len(parts) != 1:
            return error(404, f"Malformed request: {request.url.path}")
        try:
            served_version, assigner = watcher.get(parts[0], version)
        except NotFound as missing:
            return error(404, str(missing))
        if want_metadata:
            spec = {"name": parts[0], "signature_name": "", "version": str(served_version)}
            return JSONResponse({"model_spec": spec, "metadata": _signature(assigner)})
        return JSONResponse(_status(served_version, {} if version else dict(watcher.failed)))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        watcher.stop()

    app = Starlette(routes=[
        Route("/v1/models/{target:path}", predict, methods=["POST"]),
        Route("/v1/models/{target:path}", describe, methods=["GET"]),
    ], lifespan=lifespan)
    app.state.watcher = watcher
    return app


def serve(base_dir, name, host="127.0.0.1", port=8501, poll_seconds=1.0,
          max_body_bytes=MAX_BODY_BYTES, max_rows=MAX_ROWS, max_concurrent=MAX_CONCURRENT,
          **assigner_options):
    """Runs the server with uvicorn until interrupted."""
    import uvicorn

    app = create_app(base_dir, name, poll_seconds, max_body_bytes, max_rows, max_concurrent,
                     **assigner_options)
    uvicorn.run(app, host=host, port=port, log_level="warning")
