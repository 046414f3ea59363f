"""The Python half of examples/python_interop.rs.

Attaches to two shmpool named segments with multiprocessing.shared_memory, views
them as numpy arrays without copying, checks the Rust workers' results, and writes
an answer back in place. Usage: python3 python_interop.py INPUT_NAME OUTPUT_NAME
"""
import struct
import sys
from multiprocessing import resource_tracker, shared_memory

import numpy as np

# The header shmpool writes at the start of a named segment (src/shm/named.rs).
HEADER = "<8sIIIIQ16s"


def attach(name):
    shm = shared_memory.SharedMemory(name)
    # The Rust process owns the segment and unlinks it; Python must not.
    resource_tracker.unregister(shm._name, "shared_memory")
    magic, _version, offset, _size, owner, n, descr = struct.unpack_from(HEADER, shm.buf, 0)
    assert magic == b"SHMPNAMD", f"{name} is not a shmpool segment"
    dtype = descr.rstrip(b"\0").decode()
    array = np.ndarray((n,), dtype=dtype, buffer=shm.buf, offset=offset)
    return shm, array, owner


x_shm, x, owner = attach(sys.argv[1])
y_shm, y, _ = attach(sys.argv[2])
print(f"python: attached to {len(x)} {x.dtype} values owned by pid {owner}")
expected = np.sqrt(x)
error = float(np.max(np.abs(y - expected)))
print(f"python: y == sqrt(x) computed by the Rust workers, max error {error}")
assert error == 0.0
y *= -1.0  # numpy writes in place; the Rust side sees it
print(f"python: negated y in place; y[:4] = {y[:4].tolist()}")
del x, y
x_shm.close()
y_shm.close()
