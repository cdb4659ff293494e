"""float32 islands under a mixed-precision policy.

With `keras.mixed_precision.set_global_policy("mixed_bfloat16")` (or "mixed_float16") the
autoencoders compute in 16 bits, which is where the time goes. What follows the codes
stays float32: Student-t kernels, softmaxes, mixture log-densities, the input scaling and
every loss, whose normalisations and small differences a 16-bit mantissa (8 bits for
bfloat16) would round away. The networks end in a float32 cast
(`networks.float32_output`), so outputs and exported assigners are float32 under any policy.
"""

import contextlib
from pathlib import Path

import keras

# The Keras dtype policies every method trains under (the CLI's --precision lists them too,
# literally, to answer --help without importing Keras).
POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
# CPU flags (Linux /proc/cpuinfo) of bfloat16 matrix instructions, under which
# mixed_bfloat16 trained the package's networks 1.5-1.65x faster per epoch
# (benchmarks/results/precision_speed_bf16cpu.md); elsewhere bfloat16 is emulated and slower.
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The flags of this machine's first CPU (an empty set where `cpuinfo` is missing)."""
    try:
        lines = Path(cpuinfo).read_text().splitlines()
    except OSError:
        return set()
    return next((set(line.split(":", 1)[1].split()) for line in lines
                 if line.startswith("flags")), set())


def resolve_policy(name, gpu_visible=False, flags=None):
    """`name`, or for "auto" the policy this machine trains fastest under at the same
    quality: mixed_bfloat16 on a CPU with bfloat16 instructions and no GPU, float32
    elsewhere. Returns `(policy, why)`, `why` a short reason for the output."""
    if name != "auto":
        return name, "asked"
    if gpu_visible:
        return "float32", "auto: a GPU is visible"
    found = sorted(set(BFLOAT16_CPU_FLAGS) & (cpu_flags() if flags is None else set(flags)))
    if found:
        return "mixed_bfloat16", f"auto: this CPU has {', '.join(found)}"
    return "float32", "auto: this CPU has no bfloat16 instructions"


class Float32Layer(keras.layers.Layer):
    """A layer that computes in float32 whatever the global dtype policy (its inputs are
    cast to float32 as they come in). A `dtype` argument still overrides it."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)



@contextlib.contextmanager
def dtype_policy(name):
    """Keras' global dtype policy `name` for the layers built inside, then the previous."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
