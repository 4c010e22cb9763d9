"""Runs inside the emulated ARM CPU (qemu-aarch64, an arm64 Python with only numpy and ai_edge_litert):
load a .tflite, invoke it on a given input, and mark the phases for mobopt's counting plugin.

Usage: guest_count.py MODEL INPUT.npy OUTPUT.npy INVOKES

Markers (a failing write to file descriptor 0x7777 of k bytes, which the plugin records as marker k):
1 Python is up, 2 imports done, 3 model loaded and tensors allocated, 4 first invoke done,
5 INVOKES more invokes done.  Self-contained on purpose: the mobopt package is not installed in the guest.
"""

import os
import sys


def mark(k):
    try:
        os.write(0x7777, b"x" * k)
    except OSError:
        pass


mark(1)
import numpy as np  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

mark(2)
model, inp_path, out_path, invokes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
it = Interpreter(model_path=model, num_threads=1)
it.allocate_tensors()
mark(3)
inp, out = it.get_input_details()[0], it.get_output_details()[0]
it.set_tensor(inp["index"], np.load(inp_path))
it.invoke()
mark(4)
for _ in range(invokes):
    it.invoke()
mark(5)
np.save(out_path, it.get_tensor(out["index"]))
