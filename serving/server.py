"""An HTTP server that speaks TF Serving's REST API, backed by ONNX Runtime.

Clients written for TF Serving work unchanged:

- `POST /v1/models/NAME[/versions/V | /labels/L]:predict` with `{"instances": [...]}`
  (row format, rows or `{"inputs": row}`, answered with `{"predictions": [...]}`) or
  `{"inputs": ...}` (columnar, answered with `{"outputs": {...}}`), and optionally
  `"signature_name": "serving_default"`;
- `GET /v1/models/NAME[/versions/V | /labels/L]`: version status;
- `GET /v1/models/NAME[/versions/V | /labels/L]/metadata`: the signature.

It serves the newest version under BASE/NAME, or every model of a TF Serving model config
file with its version policy and labels (`keras_deepclust.serving.model_config`); version
folders `VERSION/model.onnx` are written by `keras_deepclust.export.export_onnx_version`,
renamed into place complete, and picked up when they appear (temporary ones, starting
with '.', are never read). Bad requests get `{"error": ...}` with a 4xx status and the
server keeps serving. Starlette + uvicorn; no TensorFlow.

    keras-deepclust serve artifacts/onnx --name digits --port 8501
    keras-deepclust serve --model-config-file artifacts/onnx/models.config
"""

import contextlib
import errno
import json
import logging
import math
import numbers
import socket
import threading
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.routing import Route

from keras_deepclust._io import versions_in
from keras_deepclust._validation import check_positive_int
from keras_deepclust.serving.assigner import ClusterAssigner, check_assigner_options
from keras_deepclust.serving.metadata import ONNX_VERSION_FILE
from keras_deepclust.serving.model_config import ModelConfig, read_model_config

logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_ROWS = 65_536  # rows per request
MAX_CONCURRENT = 32  # predict requests in progress; more are answered 503
INLINE_BODY_BYTES = 64 * 1024  # smaller requests are answered on the event loop itself


class BadRequest(ValueError):
    """A client error, answered with status 400."""


class NotFound(LookupError):
    """An unknown model or version, answered with status 404."""


class AddressUnavailable(OSError, ValueError):
    """The server cannot listen on the host and port it was given: the port is in use,
    the host is not an address of this machine, or not an address at all. An OSError,
    and a ValueError too, so that the command line reports it as a one-line error."""


class ModelWatcher:
    """Keeps the versions that a model's policy names loaded, polling for changes.

    A version that fails to load is logged once and never retried; the others keep
    serving. A new set of versions replaces the old one at once, so no request fails in
    the swap.

    Args:
        config: a `ModelConfig` (its name, base path, version policy and labels).
        poll_seconds: how often to look for new versions.
        assigner_options: keyword arguments for `ClusterAssigner`.
    """

    def __init__(self, config, poll_seconds=1.0, **assigner_options):
        self.config = config
        self.name = config.name
        self.poll_seconds = poll_seconds
        self.assigner_options = assigner_options
        self.served = {}  # version -> ClusterAssigner
        self.failed = {}  # version -> why it could not be loaded
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.refresh()
        if not self.served:
            raise FileNotFoundError(
                f"No servable version of {self.name} under {config.base_path}: expected "
                f"VERSION/{ONNX_VERSION_FILE} for the versions of its policy ({config.policy})."
            )
        self._thread = threading.Thread(target=self._poll, daemon=True, name=f"watch-{self.name}")
        self._thread.start()

    def refresh(self):
        """Loads the versions the policy wants (among those that did not fail) and drops
        the others."""
        candidates = [v for v in versions_in(self.config.base_path, holding=ONNX_VERSION_FILE)
                      if v not in self.failed]
        wanted = self.config.wanted(candidates)
        if not wanted or set(wanted) == set(self.served):
            return
        served = {v: a for v, a in self.served.items() if v in wanted}
        for version in sorted(set(wanted) - set(served)):
            try:
                served[version] = ClusterAssigner(
                    self.config.base_path / str(version) / ONNX_VERSION_FILE,
                    **self.assigner_options)
            except Exception as error:  # whatever a broken version raises, it is logged
                self.failed[version] = str(error)
                logger.error("could not load %s version %s (still serving versions %s): %s",
                             self.name, version, sorted(self.served), error)
        if served:
            with self._lock:
                self.served = served
            logger.info("serving %s versions %s", self.name, sorted(served))

    def _poll(self):
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception:  # an unreadable folder: keep serving, look again next time
                logger.exception("could not look for new versions of %s", self.name)

    def stop(self):
        self._stop.set()

    def get(self, version=None, label=None):
        """`(version, assigner)`: the newest served version, a specific one or a labelled
        one; `NotFound` if it is not served."""
        with self._lock:
            served = self.served
        if label is not None:
            if label not in self.config.labels:
                raise NotFound(f"Unrecognized servable version label: {label}")
            version = str(self.config.labels[label])
        if version is None:
            newest = max(served)
            return newest, served[newest]
        version = self._known(version, served)
        return version, served[version]

    def _known(self, version, known):
        """A request's `version` (a string) as an int of `known`; `NotFound` otherwise."""
        if not version.isdigit() or int(version) not in known:
            raise NotFound(f"Servable not found for request: Specific({self.name}, {version})")
        return int(version)

    def status(self, version=None):
        """TF Serving's version status: served versions AVAILABLE, versions that failed to
        load END with their error, newest first (only `version`'s, if given)."""
        states = {v: ("AVAILABLE", "OK", "") for v in self.served}
        states.update({v: ("END", "UNKNOWN", message) for v, message in self.failed.items()})
        if version is not None:
            version = self._known(version, states)
            states = {version: states[version]}
        return {"model_version_status": [
            {"version": str(v), "state": state,
             "status": {"error_code": code, "error_message": message}}
            for v, (state, code, message) in sorted(states.items(), reverse=True)]}


class ModelRegistry:
    """The watchers of every served model, by name."""

    def __init__(self, configs, poll_seconds=1.0, **assigner_options):
        self.watchers = {}
        try:
            for config in configs:
                self.watchers[config.name] = ModelWatcher(config, poll_seconds,
                                                          **assigner_options)
        except Exception:
            self.stop()
            raise

    def watcher(self, name):
        if name not in self.watchers:
            raise NotFound(f"Servable not found for request: Latest({name})")
        return self.watchers[name]

    def stop(self):
        for watcher in self.watchers.values():
            watcher.stop()


def _parse_target(target):
    """`(name, version, label, rest)` of NAME[/versions/V | /labels/L][/rest]."""
    parts = target.split("/")
    name, version, label = parts[0], None, None
    if len(parts) >= 3 and parts[1] in ("versions", "labels"):
        version, label = (parts[2], None) if parts[1] == "versions" else (None, parts[2])
        parts = parts[3:]
    else:
        parts = parts[1:]
    return name, version, label, "/".join(parts)


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
        # float64, as JSON numbers are: the assigner refuses values beyond the model's
        # float32 ("too large for the model") instead of meeting them as infinities.
        array = np.asarray(rows, dtype=np.float64)
    except OverflowError:  # an integer literal beyond float64's range
        raise BadRequest("Inputs hold a number too large for the model.") from None
    except (ValueError, TypeError, RecursionError):
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


def _predict(registry, name, version, label, raw_body, max_rows):
    body = _parse_json(raw_body)
    served_version, assigner = registry.watcher(name).get(version, label)
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


def model_configs(base_dir=None, name=None, model_config_file=None):
    """The models to serve: BASE/NAME's newest version, or those of a model config file."""
    if model_config_file is not None:
        if base_dir is not None or name is not None:
            raise ValueError("Pass either a model config file or a base folder and a name, "
                             "not both.")
        return read_model_config(model_config_file)
    if base_dir is None or name is None:
        raise ValueError("Pass a base folder and a model name (or a model config file).")
    return [ModelConfig(name=name, base_path=Path(base_dir) / name)]


def create_app(base_dir=None, name=None, poll_seconds=1.0, max_body_bytes=MAX_BODY_BYTES,
               max_rows=MAX_ROWS, max_concurrent=MAX_CONCURRENT, model_config_file=None,
               **assigner_options):
    """The Starlette application serving BASE/NAME, or every model of a TF Serving model
    config file (see the module documentation).

    The work one request can cause is bounded: a body over `max_body_bytes` or over
    `max_rows` rows gets a 400; while `max_concurrent` predict requests are in progress,
    further ones get a 503 with `Retry-After: 1`.
    """
    poll_seconds, max_body_bytes, max_rows, max_concurrent = _check_server_options(
        poll_seconds, max_body_bytes, max_rows, max_concurrent, assigner_options)
    registry = ModelRegistry(model_configs(base_dir, name, model_config_file),
                             poll_seconds=poll_seconds, **assigner_options)
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
        model, version, label, rest = _parse_target(target[: -len(":predict")])
        if rest:
            return error(404, f"Malformed request: {request.url.path}")
        raw = b""
        try:
            raw = await _read_body(request, max_body_bytes)
            arguments = (registry, model, version, label, raw, max_rows)
            if len(raw) <= INLINE_BODY_BYTES:  # a few rows: a thread hop costs more than them
                answer = _predict(*arguments)
            else:
                answer = await run_in_threadpool(_predict, *arguments)
            return JSONResponse(answer)
        except BadRequest as bad:
            return error(400, str(bad))
        except NotFound as missing:
            return error(404, str(missing))
        except Exception:  # the server's fault: logged, answered, the connection kept
            logger.exception("predict failed on a %d-byte request", len(raw))
            return error(500, "Internal error; the server's log has the details.")

    async def describe(request):
        model, version, label, rest = _parse_target(request.path_params["target"])
        if rest not in ("", "metadata"):
            return error(404, f"Malformed request: {request.url.path}")
        try:
            watcher = registry.watcher(model)
            if rest == "metadata":
                served_version, assigner = watcher.get(version, label)
                spec = {"name": model, "signature_name": "", "version": str(served_version)}
                return JSONResponse({"model_spec": spec, "metadata": _signature(assigner)})
            if label is not None:
                version = str(watcher.get(None, label)[0])
            return JSONResponse(watcher.status(version))
        except NotFound as missing:
            return error(404, str(missing))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        registry.stop()

    app = Starlette(routes=[
        Route("/v1/models/{target:path}", predict, methods=["POST"]),
        Route("/v1/models/{target:path}", describe, methods=["GET"]),
    ], lifespan=lifespan)
    app.state.registry = registry
    return app


def _check_server_options(poll_seconds, max_body_bytes, max_rows, max_concurrent,
                          assigner_options):
    """`(poll_seconds, max_body_bytes, max_rows, max_concurrent)` checked, and the
    `ClusterAssigner` options: a ValueError naming the first bad one and its value."""
    check_assigner_options(**assigner_options)
    return (_check_positive_seconds(poll_seconds, "poll_seconds"),
            check_positive_int(max_body_bytes, "max_body_bytes"),
            check_positive_int(max_rows, "max_rows"),
            check_positive_int(max_concurrent, "max_concurrent"))


def _check_positive_seconds(value, name):
    """`value` as a float, or a ValueError naming `name` unless it is a finite number of
    seconds above 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number of seconds above 0, got {value!r}.")
    return float(value)


def _check_host(host):
    """`host` if it is a non-empty string (an IP address or a name)."""
    if not isinstance(host, str) or not host.strip():
        raise ValueError(f"host must be an IP address or a host name, got {host!r}.")
    return host


def _check_port(port):
    """`port` as an int, or a ValueError naming it unless it is from 1 to 65535."""
    if isinstance(port, bool) or not isinstance(port, numbers.Integral) \
            or not 1 <= port <= 65535:
        raise ValueError(f"port must be an integer from 1 to 65535, got {port!r}.")
    return int(port)


def _address(host, port):
    """`host:port`, an IPv6 host in brackets."""
    return f"{f'[{host}]' if ':' in host else host}:{port}"


def _listening_socket(host, port):
    """A TCP socket bound to `host:port`, as uvicorn binds one (IPv6 when `host` holds a
    ':', SO_REUSEADDR set), for `uvicorn.Server.run(sockets=...)`. Raises
    `AddressUnavailable` naming `host:port` and why when it cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except (OSError, ValueError) as error:  # UnicodeError and NUL bytes are ValueErrors
        sock.close()
        reason = getattr(error, "strerror", None) or str(error)
        if getattr(error, "errno", None) == errno.EADDRINUSE:
            reason += " (another server listens there: stop it or choose another port)"
        raise AddressUnavailable(f"cannot listen on {_address(host, port)}: {reason}.") from None
    sock.set_inheritable(True)
    return sock


def serve(base_dir=None, name=None, host="127.0.0.1", port=8501, poll_seconds=1.0,
          max_body_bytes=MAX_BODY_BYTES, max_rows=MAX_ROWS, max_concurrent=MAX_CONCURRENT,
          model_config_file=None, **assigner_options):
    """Runs the server with uvicorn until interrupted.

    In order, so that a mistake stops it before anything is announced: checks every
    argument (ValueError naming it), binds `host:port` (`AddressUnavailable` naming it),
    loads the models, prints the address of each model, then serves."""
    import uvicorn

    host, port = _check_host(host), _check_port(port)
    _check_server_options(poll_seconds, max_body_bytes, max_rows, max_concurrent,
                          assigner_options)
    sock = _listening_socket(host, port)
    try:
        app = create_app(base_dir, name, poll_seconds, max_body_bytes, max_rows,
                         max_concurrent, model_config_file, **assigner_options)
        for model in app.state.registry.watchers:
            print(f"serving {model} on http://{_address(host, port)}/v1/models/{model}",
                  flush=True)
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    finally:
        sock.close()
