"""The Python half of examples/python_interop.rs.

Attaches to two shmpool named segments with multiprocessing.shared_memory, views
them as numpy arrays without copying, checks the Rust workers' results, and writes
an answer back in place. Usage: python3 python_interop.py INPUT_NAME OUTPUT_NAME
"""
import struct
import sys
from multiprocessing import resource_tracker, shared_memory

import numpy as np

# The header shmpool writes at the start of a named segment (src/shm/named.rs):
# magic, version, data offset, element size, owner pid, length, dtype, ndim,
# reserved, owner start time, and 8 dimensions (ndim of them used).
HEADER = "<8sIIIIQ16sIIQ8Q"


def attach(name):
    shm = shared_memory.SharedMemory(name)
    # The Rust process owns the segment and unlinks it; Python must not.
    resource_tracker.unregister(shm._name, "shared_memory")
    fields = struct.unpack_from(HEADER, shm.buf, 0)
    magic, _version, offset, _size, owner, n, descr, ndim = fields[:8]
    assert magic == b"SHMPNAMD", f"{name} is not a shmpool segment"
    shape = tuple(fields[10 : 10 + ndim])  # the owner's shape, kept true by reshape
    assert int(np.prod(shape)) == n, f"{name}: shape {shape} does not hold {n} elements"
    dtype = descr.rstrip(b"\0").decode()
    array = np.ndarray(shape, dtype=dtype, buffer=shm.buf, offset=offset)
    return shm, array, owner


x_shm, x, owner = attach(sys.argv[1])
y_shm, y, _ = attach(sys.argv[2])
print(f"python: attached to {x.size} {x.dtype} values owned by pid {owner}; y has shape {y.shape}")
expected = np.sqrt(x).reshape(y.shape)
error = float(np.max(np.abs(y - expected)))
print(f"python: y == sqrt(x) computed by the Rust workers, max error {error}")
assert error == 0.0
y *= -1.0  # numpy writes in place; the Rust side sees it
print(f"python: negated y in place; y.flat[:4] = {y.flat[:4].tolist()}")
del x, y
x_shm.close()
y_shm.close()
