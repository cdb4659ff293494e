"""Merges the JSON lines of several benchmark runs (say, seeds run in separate
sessions) into one Markdown table of mean +- std, headed by this command.

    python benchmarks/summarise.py results/a.jsonl results/b.jsonl --table seed_methods \
        --out results/merged.md
"""

import argparse
import json
import sys
from pathlib import Path

import dec_family
import seed_methods

ORDERS = {"dec_family": dec_family.ORDER, "seed_methods": seed_methods.ORDER}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("jsonl", nargs="+", type=Path)
    parser.add_argument("--table", choices=sorted(ORDERS), required=True)
    parser.add_argument("--out", type=Path, required=True, help="the Markdown file to write")
    args = parser.parse_args(argv)
    rows = [json.loads(line) for path in args.jsonl for line in path.read_text().splitlines()
            if line.strip()]
    # Each run repeats k-means on the inputs for its seeds: keep one row per (method, seed).
    rows = list({(row["method"], row["seed"]): row for row in reversed(rows)}.values())[::-1]
    datasets = sorted({row["dataset"] for row in rows})
    if len(datasets) != 1:
        raise SystemExit(f"The files mix datasets {datasets}; merge one dataset at a time.")
    seeds = sorted({row["seed"] for row in rows})
    command = "python benchmarks/summarise.py " + " ".join(argv if argv is not None else sys.argv[1:])
    table = dec_family.summarise(rows, datasets[0], order=ORDERS[args.table])
    args.out.write_text(f"Command: `{command}`\n\nMean ± std over seeds {seeds}, "
                        f"from {', '.join(p.name for p in args.jsonl)}.\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
