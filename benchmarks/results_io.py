"""Writing a benchmark's results: the Markdown table and the JSON beside it, each
written under a temporary name and renamed, so a killed run leaves the old files; and the
machine they were measured on."""

from pathlib import Path

from keras_deepclust._io import atomic_path, write_json


def write_results(out_dir, stem, markdown, data):
    """Writes `out_dir/stem.md` and `out_dir/stem.json`."""
    out_dir = Path(out_dir)
    with atomic_path(out_dir / f"{stem}.md") as tmp:
        Path(tmp).write_text(markdown)
    write_json(out_dir / f"{stem}.json", data)
    return out_dir / f"{stem}.md"


def cpu_info():
    """`(model name, sorted flags)` of this machine's CPU, from /proc/cpuinfo
    (`("unknown", [])` where there is none)."""
    from keras_deepclust.layers.precision import cpu_flags

    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown", []
    model = next((line.split(":", 1)[1].strip() for line in lines
                  if line.startswith("model name")), "unknown")
    return model, sorted(cpu_flags())


def read_json_lines(paths):
    """The records of JSON-lines files, in order."""
    import json

    return [json.loads(line) for path in paths for line in Path(path).read_text().splitlines()
            if line.strip()]


def final_score_cells(group, seconds_key=None):
    """`ACC mean ± std | worst ACC | NMI | ARI | mean seconds | seeds` of a group of runs
    (records with `final` scores, `seed` and, unless `seconds_key` is None, the seconds
    cell's `seconds_key`), as Markdown cells."""
    import numpy as np

    final = {m: np.array([r["final"][m] for r in group]) for m in ("acc", "nmi", "ari")}
    seconds = ("" if seconds_key is None
               else f"{np.mean([r[seconds_key] for r in group]):.0f} | ")
    return (f"{final['acc'].mean():.3f} ± {final['acc'].std():.3f} | {final['acc'].min():.3f} | "
            f"{final['nmi'].mean():.3f} | {final['ari'].mean():.3f} | {seconds}"
            f"{','.join(str(r['seed']) for r in group)}")
