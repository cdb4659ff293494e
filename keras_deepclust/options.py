"""The method options the command line sets, each declared once: the constructor (or
`fit`) argument, its flag, the values the flag takes and the argument each gives, and its
help. The CLI builds its flags from `TABLE` and `keras-deepclust methods` lists them; a
method declares the options it takes (`OPTIONS`, `FIT_OPTIONS`), and its constructor checks
an option's value against the same row (`check`); a number's range (`Number`) is declared
once too, and both the flag's parser and the constructor read it. `Spelling` lets the
library's errors name arguments by their flags. Plain Python: `--help` reads it before
Keras or TensorFlow is imported."""

import inspect
import math
import numbers
from dataclasses import dataclass

# quick=True (`fit --quick`): at most 20 epochs of each phase, but a pretraining of at
# least 1,000 optimizer steps: on the 1,797 digits 20 epochs are 160 steps, which left
# auto's codes at ACC 0.34 where 125 epochs (1,000 steps) gave 0.90.
QUICK_EPOCHS = {"pretrain_epochs": 20, "epochs": 20, "pretrain_steps": 1000}


@dataclass(frozen=True)
class Number:
    """The numbers an argument takes: integers (`kind` int) or finite numbers (float)
    from `low` to `high`, each bound included unless `low_open` / `high_open`."""

    kind: type
    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def describe(self):
        """E.g. "an integer >= 1", "a number > 0", "a number in [0, 1)"."""
        kind = "an integer" if self.kind is int else "a number"
        low, high = (f"{bound:.15g}" for bound in (self.low, self.high))
        if self.high == math.inf:
            return f"{kind} {'>' if self.low_open else '>='} {low}"
        if self.kind is int and not (self.low_open or self.high_open):
            return f"{kind} from {low} to {high}"
        return (f"{kind} in {'(' if self.low_open else '['}{low}, {high}"
                f"{')' if self.high_open else ']'}")

    def takes(self, value):
        """Whether `value` is such a number (a bool is not; an integer is a float's)."""
        kind = numbers.Integral if self.kind is int else numbers.Real
        if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def check(self, value, name):
        """`value` as `kind`, or a ValueError naming `name`, the range and `value`."""
        if not self.takes(value):
            raise ValueError(f"{name} must be {self.describe()}, got {value!r}.")
        return self.kind(value)

    def parse(self, text):
        """The number `text` writes, or a ValueError ("expected <range>, got <text>")."""
        try:
            value = self.kind(text)
        except ValueError:
            raise ValueError(f"expected {self.describe()}, got {text!r}") from None
        if not self.takes(value):
            raise ValueError(f"expected {self.describe()}, got {text}")
        return value


POSITIVE_INT = Number(int, 1)
NON_NEGATIVE_FLOAT = Number(float, 0)
# DEC-DA's augmentation (`ImageAugmentation`): a shift under the image's size, a rotation
# of at most half a turn either way.
SHIFT = Number(float, 0, 1, high_open=True)
DEGREES = Number(float, 0, 180)


@dataclass(frozen=True)
class Option:
    """One option: `name` is the argument, `flag` the command line's.

    `choices` are the flag's values and `values` maps each to the argument (None: the
    value itself); `numbers` the `Number` of each value of a numeric option (one, or one
    per element of a tuple, named by `metavar`); `fit` marks an argument of `fit` rather
    than of the constructor, `switch` a flag without a value.
    """

    name: str
    flag: str
    help: str
    choices: tuple = None
    values: dict = None
    numbers: tuple = None
    metavar: tuple = None
    fit: bool = False
    switch: bool = False

    @property
    def nargs(self):
        return None if self.numbers is None or len(self.numbers) == 1 else len(self.numbers)

    def argument(self, value):
        """The argument the flag's (parsed) `value` gives."""
        return value if self.values is None else self.values[value]

    def allowed(self):
        """The arguments the option takes, one per value of its flag (None: not a choice)."""
        return None if self.choices is None else tuple(self.argument(c) for c in self.choices)

    def check_numbers(self, value):
        """A numeric option's `value` (a number, or a tuple of them) in its kinds, or a
        ValueError naming the option, the ranges and `value`."""
        if len(self.numbers) == 1:
            return self.numbers[0].check(value, self.name)
        names = [name.lower() for name in self.metavar]
        if (not isinstance(value, (tuple, list)) or len(value) != len(self.numbers)
                or not all(n.takes(v) for n, v in zip(self.numbers, value))):
            ranges = ", ".join(f"{name} {n.describe()}" for name, n in zip(names, self.numbers))
            raise ValueError(f"{self.name} must be ({', '.join(names)}): {ranges}, "
                             f"got {value!r}.")
        return tuple(n.kind(v) for n, v in zip(self.numbers, value))

    def parse_numbers(self, texts):
        """The flag's value(s) parsed, or a ValueError naming the range of the bad one."""
        if len(self.numbers) == 1:
            return self.numbers[0].parse(texts)
        parsed = []
        for name, number, text in zip(self.metavar, self.numbers, texts):
            try:
                parsed.append(number.parse(text))
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
        return parsed


TABLE = (
    Option("augmentation", "--augment", numbers=(SHIFT, DEGREES), metavar=("SHIFT", "DEGREES"),
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
    Option("refine_epochs", "--refine-epochs", numbers=(POSITIVE_INT,),
           help="option refine_epochs of auto: epochs of the refinement (default 60)"),
    Option("manifold_head", "--manifold-head", choices=("regression", "neighbors"),
           help="option manifold_head: how the exported model maps codes to the UMAP manifold "
                "(default neighbors: interpolation among the nearest fitted codes; "
                "regression: a trained MLP, less faithful on new rows)"),
)
BY_NAME = {option.name: option for option in TABLE}


def _same(value, argument):
    """Equal and of one type: True == 1, and 1 is not an allowed refine."""
    return value == argument and type(value) is type(argument)


def check(name, value, allowed=None):
    """`value` if the option `name` takes it: one of its row's `allowed()` arguments, or of
    `allowed` (a subset of them) for a method that takes fewer, or numbers in its row's
    ranges (returned as their kinds); else a ValueError naming the option, its values and
    `value`."""
    if BY_NAME[name].numbers is not None:
        return BY_NAME[name].check_numbers(value)
    values = BY_NAME[name].allowed()
    if allowed is not None:
        assert set(allowed) <= set(values), (name, allowed)
        values = tuple(allowed)
    if not any(_same(value, v) for v in values):
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


def options_of(method_class):
    """The rows of the options `method_class` takes, in the table's order."""
    taken = set(method_class.OPTIONS) | set(method_class.FIT_OPTIONS)
    return [option for option in TABLE if option.name in taken]


def flags_of(method_class):
    """The flags of the options `method_class` takes, in the table's order."""
    return [option.flag for option in options_of(method_class)]


def default_of(method_class, option):
    """The default of `option` where `method_class` declares it: the signature of the
    nearest `__init__` (or `fit`, for a `fit` option) in its MRO that names the argument.
    The table holds no defaults: they differ by method (AEC's `init` is "random", DEC's
    "kmeans") and live in the signatures, as scikit-learn's do."""
    function = "fit" if option.fit else "__init__"
    for cls in method_class.__mro__:
        if function in vars(cls):
            parameters = inspect.signature(vars(cls)[function]).parameters
            if option.name in parameters:
                return parameters[option.name].default
    raise AssertionError(f"{method_class.__name__} declares {option.name} but no signature "
                         "names it.")


def flag_default(method_class, option):
    """`default_of` as the flag writes it: its choice ("on" for refine=True), the numbers,
    or "none"."""
    value = default_of(method_class, option)
    if option.choices is not None:
        value = next((c for c in option.choices if _same(option.argument(c), value)), value)
    if isinstance(value, (tuple, list)):
        return " ".join(map(str, value))
    return "none" if value is None else str(value).lower()
