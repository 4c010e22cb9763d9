"""Runs inside the emulated CPU (qemu-aarch64 with an arm64 Python that has only numpy and ai_edge_litert, or
qemu-x86_64 with the benchmark's own Python): load a .tflite (or, on x86, an .onnx into ONNX Runtime), invoke it
on a given input, and mark the phases for mobopt's counting plugin.

Usage: guest_count.py MODEL INPUT.npy OUTPUT.npy INVOKES

Markers (a failing write to file descriptor 0x7777 of k bytes, which the plugin records as marker k):
1 Python is up, 2 imports done, 3 model loaded and tensors allocated, 4 first invoke done,
5 INVOKES more invokes done.  Self-contained on purpose: the mobopt package is not installed in the ARM guest.
An .onnx model runs as the host benchmark runs it: one intra-op thread, sequential, input and output bound
once (I/O binding), so an invoke is ``run_with_iobinding`` alone.
"""

import os
import sys


def mark(k):
    try:
        os.write(0x7777, b"x" * k)
    except OSError:
        pass


def litert(model, x):
    from ai_edge_litert.interpreter import Interpreter

    mark(2)
    it = Interpreter(model_path=model, num_threads=1)
    it.allocate_tensors()
    mark(3)
    it.set_tensor(it.get_input_details()[0]["index"], x)
    return it.invoke, lambda: it.get_tensor(it.get_output_details()[0]["index"])


def onnxruntime(model, x):
    import onnxruntime as ort

    mark(2)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    session = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
    binding = session.io_binding()
    binding.bind_cpu_input(session.get_inputs()[0].name, x)
    binding.bind_output(session.get_outputs()[0].name)
    mark(3)
    return (lambda: session.run_with_iobinding(binding)), (lambda: binding.copy_outputs_to_cpu()[0])


mark(1)
import numpy as np  # noqa: E402

model, inp_path, out_path, invokes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
x = np.ascontiguousarray(np.load(inp_path))
invoke, output = (onnxruntime if model.endswith(".onnx") else litert)(model, x)
invoke()
mark(4)
for _ in range(invokes):
    invoke()
mark(5)
np.save(out_path, output())
