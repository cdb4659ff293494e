"""Writing a benchmark's results: the Markdown table and the JSON beside it, each
written under a temporary name and renamed, so a killed run leaves the old files."""

from pathlib import Path

from keras_deepclust._io import atomic_path, write_json


def write_results(out_dir, stem, markdown, data):
    """Writes `out_dir/stem.md` and `out_dir/stem.json`."""
    out_dir = Path(out_dir)
    with atomic_path(out_dir / f"{stem}.md") as tmp:
        Path(tmp).write_text(markdown)
    write_json(out_dir / f"{stem}.json", data)
    return out_dir / f"{stem}.md"
