"""Every fenced code block of README.md runs here, scaled down where it trains.

- ```python blocks run in order (`exec`, one namespace, a temporary working directory),
  with every `epochs=N` lowered to `epochs=2`.
- ```bash / ```sh blocks, command by command: the install and test commands are not
  run again (CI runs them) but must be exactly the commands `.ci/run` uses;
  `keras-deepclust ...` runs through `keras_deepclust.cli.main`, with `--quick` added
  to `fit` and `demo` (and the quick epochs lowered to 2 here);
  `keras-deepclust serve ... &` starts the real server in a subprocess on a free port
  of 127.0.0.1, and `curl` is sent to it (with urllib when there is no curl binary).
- ```text blocks show output: the demo's is compared with what the demo prints.

The demo block runs in one test and every other block, in order, in another, so that
the two can run side by side under pytest-xdist. Relative links of README.md and of
docs/ must point at files that exist.
"""

import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CI_SCRIPT = ROOT / ".ci" / "run"
SCALED_EPOCHS = 2
RUNNABLE = ("python", "bash", "sh")
OUTPUT = ("text",)


def fenced_blocks(path=README):
    """`[(language, source, first line number)]` of the fenced blocks of `path`."""
    blocks, language, lines, start = [], None, [], 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fence = re.match(r"^\s*```\s*([\w+-]*)\s*$", line)
        if fence and language is None:
            language, lines, start = fence.group(1).lower() or "(none)", [], number + 1
        elif fence and not fence.group(1):
            blocks.append((language, "\n".join(lines), start))
            language = None
        elif language is not None:
            lines.append(line)
    assert language is None, f"{path}: a fenced block opened at line {start - 1} never closes"
    return blocks


def shell_commands(source):
    """The commands of a shell block: `[(argv, background)]`, split at `&&`, with
    comments and line continuations handled as the shell does."""
    commands = []
    for line in source.replace("\\\n", " ").splitlines():
        tokens = shlex.split(line, comments=True)
        background = bool(tokens) and tokens[-1] == "&"
        tokens = tokens[:-1] if background else tokens
        while tokens:
            stop = tokens.index("&&") if "&&" in tokens else len(tokens)
            commands.append((tokens[:stop], background and stop == len(tokens)))
            tokens = tokens[stop + 1:]
    return commands


def ci_commands():
    """The commands of `.ci/run`, by role: venv, pip install and pytest."""
    roles = {}
    for argv, _ in shell_commands(CI_SCRIPT.read_text()):
        if argv[:3] == ["python3", "-m", "venv"]:
            roles["venv"] = argv
        elif argv[0].endswith("/pip") and "install" in argv:
            roles["install"] = argv
        elif argv[0].endswith("/pytest"):
            roles["pytest"] = argv
    assert set(roles) == {"venv", "install", "pytest"}, f".ci/run changed: {roles}"
    return roles


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, data=None, timeout=30):
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


class Runner:
    """Runs README blocks in one working directory, keeping what later blocks need:
    the Python namespace, the server process and its port."""

    def __init__(self, cwd):
        self.cwd = Path(cwd)
        self.namespace = {"__name__": "__readme__"}
        self.server = None  # (process, README port, real port, model name)
        self.printed = []  # what the CLI commands printed
        self.curl_binary_skipped = False
        self.answers_checked = 0  # server answers compared with the Keras model

    # ------------------------------------------------------------------ python
    def python(self, source, line):
        scaled = re.sub(r"\bepochs=\d+", f"epochs={SCALED_EPOCHS}", source)
        exec(compile(scaled, f"README.md (block at line {line})", "exec"), self.namespace)

    # ------------------------------------------------------------------- shell
    def shell(self, source, line, capsys):
        for argv, background in shell_commands(source):
            program = Path(argv[0]).name
            if program in ("python3", "pip", "pytest"):
                self.ci_command(argv)
            elif program == "keras-deepclust":
                self.keras_deepclust(argv[1:], background, capsys)
            elif program == "curl":
                self.curl(argv[1:])
            else:
                pytest.fail(f"README.md, block at line {line}: no way to run {argv}")

    def ci_command(self, argv):
        """Not run again: must be one of the commands .ci/run runs (which CI runs)."""
        ci = ci_commands()
        if argv[1:3] == ["-m", "venv"]:
            assert argv == ci["venv"]
        elif Path(argv[0]).name == "pip":
            assert argv == [token for token in ci["install"] if token not in ("--quiet", "-q")]
        else:
            assert argv == ci["pytest"]

    def keras_deepclust(self, args, background, capsys):
        from keras_deepclust import cli

        if args[0] == "serve":
            assert background, "README.md: `keras-deepclust serve` must end with `&`"
            return self.serve(args)
        if args[0] in ("fit", "demo"):
            args = [*args, "--quick"]
        if args[0] == "assign":
            self.stand_in_data(Path(args[2]))
        capsys.readouterr()
        assert cli.main(args) == 0, f"keras-deepclust {' '.join(args)} failed"
        self.printed.append(capsys.readouterr().out)
        self.check_outputs(args)

    def stand_in_data(self, path):
        """`assign` reads the user's own rows; the digits, flat and column-major, stand
        in for them."""
        path = self.cwd / path
        if path.exists():
            return
        from keras_deepclust import datasets

        x, _ = datasets.load_digits()
        flat = np.asfortranarray(x.reshape(len(x), -1))
        if path.suffix == ".npy":
            np.save(path, flat)
        else:
            np.savetxt(path, flat, delimiter=",")

    def check_outputs(self, args):
        """What README.md says each command writes."""
        out = args[args.index("--out") + 1] if "--out" in args else None
        if args[0] == "fit":
            report = json.loads((self.cwd / out / "metrics.json").read_text())
            assert {"scores", "kmeans_on_inputs", "cluster_sizes", "empty_clusters"} <= set(report)
            assert sum(report["cluster_sizes"]) == report["n_samples"]
            for name in ("model.keras", "labels.csv"):
                assert (self.cwd / out / name).is_file()
        elif args[0] == "assign":
            rows = (self.cwd / out).read_text().splitlines()
            assert rows[0].startswith("row,cluster") and len(rows) == 1798

    def serve(self, args):
        port = free_port()
        if "--port" in args:
            readme_port = args[args.index("--port") + 1]
            args = [*args[:args.index("--port")], *args[args.index("--port") + 2:]]
        else:
            readme_port = "8501"
        name = args[args.index("--name") + 1]
        process = subprocess.Popen(
            [sys.executable, "-m", "keras_deepclust.cli", *args, "--port", str(port)],
            cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.server = (process, readme_port, port, name)
        deadline = time.time() + 60
        while True:
            try:
                http(f"http://127.0.0.1:{port}/v1/models/{name}", timeout=5)
                return
            except OSError:
                if process.poll() is not None or time.time() > deadline:
                    process.kill()
                    pytest.fail(f"the server did not start: {process.communicate()[1].decode()}")
                time.sleep(0.2)

    def stop(self):
        if self.server is not None:
            self.server[0].terminate()
            self.server[0].wait(timeout=10)

    def curl(self, args):
        assert self.server is not None, "README.md sends a curl request before serving"
        _, readme_port, port, name = self.server
        args = [re.sub(rf"^(https?://)?(localhost|127\.0\.0\.1):{readme_port}/",
                       rf"\g<1>127.0.0.1:{port}/", a) for a in args]
        data_flags = [i for i, a in enumerate(args) if a in ("-d", "--data")]
        assert len(data_flags) == 1, f"expected one -d BODY in curl {args}"
        body = args[data_flags[0] + 1]
        body = (self.cwd / body[1:]).read_bytes() if body.startswith("@") else body.encode()
        if shutil.which("curl"):
            result = subprocess.run(["curl", "--silent", "--show-error", "--max-time", "30", *args],
                                    cwd=self.cwd, capture_output=True, text=True, check=True)
            answer = json.loads(result.stdout)
        else:
            url = next(a for a in args if f":{port}/" in a)
            answer = http(url if "://" in url else f"http://{url}", data=body)
            self.curl_binary_skipped = True
        self.check_answer(json.loads(body), answer)

    def check_answer(self, request, answer):
        """The server's answer is the Keras model's, for the rows the README sends."""
        assert "predictions" in answer, answer
        rows = np.asarray(request["instances"], np.float32)
        assert len(answer["predictions"]) == len(rows)
        model = self.namespace.get("model")
        if model is not None:  # the model the README exported, in this process
            x = rows.reshape(len(rows), *model.sample_shape)
            assert [p["cluster"] for p in answer["predictions"]] == model.predict_labels(x).tolist()
            np.testing.assert_allclose([p["probabilities"] for p in answer["predictions"]],
                                       model.predict_proba(x), atol=1e-5)
        self.answers_checked += 1


@pytest.fixture
def quick_epochs(monkeypatch):
    """`--quick` lowered to `SCALED_EPOCHS`, and scikit-learn's OpenMP and BLAS pools to one
    thread: on two cores shared with another test process, k-means and EM on the digits'
    codes took 7-14 s with two threads and 0.2-1.6 s with one."""
    import sklearn.cluster  # noqa: F401  loads the OpenMP runtime, which the limit then reaches
    from threadpoolctl import threadpool_limits

    from keras_deepclust import options

    for key in options.QUICK_EPOCHS:
        monkeypatch.setitem(options.QUICK_EPOCHS, key, SCALED_EPOCHS)
    with threadpool_limits(1):
        yield


def is_install_block(source):
    return any(Path(argv[0]).name == "pip" for argv, _ in shell_commands(source))


def test_readme_is_short_and_every_block_is_runnable_or_output():
    assert len(README.read_text().splitlines()) <= 150
    blocks = fenced_blocks()
    kinds = {language for language, _, _ in blocks}
    assert kinds <= set(RUNNABLE + OUTPUT), f"blocks this test cannot run: {kinds}"
    assert sum(is_install_block(source) for language, source, _ in blocks
               if language in ("bash", "sh")) == 1


def test_relative_links_of_readme_and_docs_resolve():
    pages = [README, ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.exists(), f"{page.relative_to(ROOT)} links to missing {target}"


def test_two_commands_are_ci_s_and_the_demo_runs(tmp_path, monkeypatch, capsys, quick_epochs):
    monkeypatch.chdir(tmp_path)
    blocks = fenced_blocks()
    index, (_, source, line) = next((i, b) for i, b in enumerate(blocks)
                                    if b[0] in ("bash", "sh") and is_install_block(b[1]))
    argvs = [argv for argv, _ in shell_commands(source)]
    names = [Path(argv[0]).name for argv in argvs]
    assert names == ["python3", "pip", "keras-deepclust", "pytest"]
    assert argvs[2][1:] == ["demo"]
    runner = Runner(tmp_path)
    runner.shell(source, line, capsys)
    demo_output = runner.printed[-1]
    # The output block after the two commands is what the demo prints: same rows.
    language, shown, _ = blocks[index + 1]
    assert language == "text"
    for row in shown.strip().splitlines():
        assert row.split()[0] in demo_output, f"the demo no longer prints {row!r}"
    assert (tmp_path / "keras-deepclust-demo" / "model.keras").is_file()


def test_every_other_block_runs_in_order(tmp_path, monkeypatch, capsys, quick_epochs):
    monkeypatch.chdir(tmp_path)
    runner = Runner(tmp_path)
    ran = 0
    try:
        for language, source, line in fenced_blocks():
            if language == "python":
                runner.python(source, line)
            elif language in ("bash", "sh") and not is_install_block(source):
                runner.shell(source, line, capsys)
            else:
                continue
            ran += 1
    finally:
        runner.stop()
    assert ran >= 2
    if any("curl" in source for language, source, _ in fenced_blocks() if language != "text"):
        assert runner.answers_checked, "the README's curl request was not checked"
    if runner.curl_binary_skipped:
        pytest.skip("no curl binary: the README's request was sent with urllib instead")
