"""The method options the command line sets, each declared once: the constructor (or
`fit`) argument, its flag, the values the flag takes and the argument each gives, and its
help. The CLI builds its flags from `TABLE` and `keras-deepclust methods` lists them; a
method declares the options it takes (`OPTIONS`, `FIT_OPTIONS`), and its constructor checks
an option's value against the same row (`check`). `Spelling` lets the library's errors
name arguments by their flags. Plain Python: `--help` reads it before Keras or TensorFlow
is imported."""

from dataclasses import dataclass

# quick=True (`fit --quick`): at most 20 epochs of each phase, but a pretraining of at
# least 1,000 optimizer steps: on the 1,797 digits 20 epochs are 160 steps, which left
# auto's codes at ACC 0.34 where 125 epochs (1,000 steps) gave 0.90.
QUICK_EPOCHS = {"pretrain_epochs": 20, "epochs": 20, "pretrain_steps": 1000}


@dataclass(frozen=True)
class Option:
    """One option: `name` is the argument, `flag` the command line's.

    `choices` are the flag's values and `values` maps each to the argument (None: the
    value itself); `parse` names the CLI parser of a typed value ("positive_int",
    "non_negative_float"), `nargs` and `metavar` as argparse takes them; `fit` marks an
    argument of `fit` rather than of the constructor, `switch` a flag without a value.
    """

    name: str
    flag: str
    help: str
    choices: tuple = None
    values: dict = None
    parse: str = None
    nargs: int = None
    metavar: tuple = None
    fit: bool = False
    switch: bool = False

    def argument(self, value):
        """The argument the flag's (parsed) `value` gives."""
        return value if self.values is None else self.values[value]

    def allowed(self):
        """The arguments the option takes, one per value of its flag (None: not a choice)."""
        return None if self.choices is None else tuple(self.argument(c) for c in self.choices)


TABLE = (
    Option("augmentation", "--augment", nargs=2, metavar=("SHIFT", "DEGREES"),
           parse="non_negative_float",
           help="option augmentation: train on randomly shifted (fraction of the size) and "
                "rotated images, as DEC-DA does (its setting: 0.1 10)"),
    Option("augment_clustering", "--augment-phases", choices=("both", "pretrain"),
           values={"both": True, "pretrain": False},
           help="option augment_clustering, with --augment: augment pretraining and "
                "clustering (both, DEC-DA; the default) or pretraining only"),
    Option("init", "--init", choices=("random", "kmeans", "gmm"),
           help="option init: how the clustering starts from the codes: k-means (the papers' "
                "default), the means or components of a full-covariance Gaussian mixture, or "
                "(aec) a random assignment"),
    Option("weight_labels", "--weight-labels", fit=True, switch=True,
           help="fit option weight_labels: the data set's labels compute DAC's feature "
                "weights (semi-supervised) instead of k-means pseudo-labels"),
    Option("refine", "--refine", choices=("auto", "on", "off"),
           values={"auto": "auto", "on": True, "off": False},
           help="option refine of auto: DEC-DA's clustering phase after the manifold's "
                "partition (default auto: on images of at least 16 pixels a side; --quick "
                "caps it at 20 epochs)"),
    Option("refine_epochs", "--refine-epochs", parse="positive_int",
           help="option refine_epochs of auto: epochs of the refinement (default 60)"),
    Option("manifold_head", "--manifold-head", choices=("regression", "neighbors"),
           help="option manifold_head: how the exported model maps codes to the UMAP manifold "
                "(default neighbors: interpolation among the nearest fitted codes; "
                "regression: a trained MLP, less faithful on new rows)"),
)
BY_NAME = {option.name: option for option in TABLE}


def check(name, value, allowed=None):
    """`value` if the option `name` takes it: one of its row's `allowed()` arguments, or of
    `allowed` (a subset of them) for a method that takes fewer; else a ValueError naming
    the option, its values and `value`."""
    values = BY_NAME[name].allowed()
    if allowed is not None:
        assert set(allowed) <= set(values), (name, allowed)
        values = tuple(allowed)
    # By type as well: True == 1, and 1 is not an allowed refine.
    if not any(value == v and type(value) is type(v) for v in values):
        raise ValueError(f"{name} must be one of {values}, got {value!r}.")
    return value


class Spelling:
    """How an error names the arguments it is about: as Python's keywords
    (`n_clusters=K`), or, given `flags` (argument name -> flag), as the command line's
    (`--clusters K`), so that the library's checks speak to either caller."""

    def __init__(self, flags=None):
        self.flags = dict(flags or {})

    def name(self, argument):
        return self.flags.get(argument, argument)

    def setting(self, argument, value="True"):
        """The argument set to `value` (text), as the caller would write it; a flag that
        is a switch is written alone."""
        if argument not in self.flags:
            return f"{argument}={value}"
        return self.flags[argument] if value == "True" else f"{self.flags[argument]} {value}"


PYTHON = Spelling()


def flags_of(method_class):
    """The flags of the options `method_class` takes, in the table's order."""
    taken = set(method_class.OPTIONS) | set(method_class.FIT_OPTIONS)
    return [option.flag for option in TABLE if option.name in taken]
