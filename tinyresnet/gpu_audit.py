"""Which ops of a traced function would run on the CPU of a GPU machine: those without a GPU kernel.

TensorFlow places an op on the GPU only if a kernel is registered for it on
the GPU (or for any device, `DEFAULT`) with the op's dtypes; otherwise the op
runs on the CPU, silently, and its tensors are copied across on every call.
The CPU wheel registers the GPU kernels too, so this is checked without a GPU
(`tests/test_gpu_audit.py` audits Net 1's training step and the export).

    from tinyresnet import gpu_audit
    step = tf.function(trainer.train_step).get_concrete_function(batch_spec)
    gpu_audit.ops_without_gpu_kernel(step)  # [] when every op has a GPU kernel
"""

import dataclasses
from typing import Mapping, Tuple

import tensorflow as tf
from tensorflow.python.framework import kernels  # the kernel registry has no public API

# Ops that may stay on the host anywhere, and why: strings have no GPU representation.
ALLOW = {
    "Const:string": "a string constant (the export's class names) lives in host memory, as every string does",
    "GatherV2:string": "top_k_labels picks class names, strings, which live in host memory",
}

# What serve_image_bytes may also keep on the host: its input is encoded bytes, decoded image by image by
# tf.map_fn on the CPU (as tf.data decodes for training); the decoded batch then goes to the GPU.
SERVE_IMAGE_BYTES = {
    **ALLOW,
    "DecodeImage": "decoding JPEG/PNG/BMP/GIF bytes is host work, as in tf.data",
    "ScaleAndTranslate": "the antialiased resize of a decoded image of another size, on the host where it was "
                         "decoded (the training pipeline resizes there too)",
    "TensorListFromTensor": "tf.map_fn's list of the request's encoded images (strings)",
    "TensorListGetItem": "tf.map_fn reading one encoded image (a string) per iteration",
    "TensorListSetItem": "tf.map_fn collecting each decoded uint8 image on the host, where it was decoded",
    "TensorListStack": "tf.map_fn stacking the decoded uint8 images into the batch, on the host",
}


@dataclasses.dataclass(frozen=True)
class Fallback:
    """An op without a kernel for the device, where it is, and the dtypes it was asked for."""
    op: str
    dtypes: Tuple[str, ...]
    node: str
    function: str  # "" for the top-level graph

    def __str__(self):
        where = f" in function {self.function}" if self.function else ""
        return f"{self.op} ({', '.join(self.dtypes) or 'no dtype'}; node {self.node!r}{where})"


def _type_values(attr):
    kind = attr.WhichOneof("value")
    if kind == "type":
        return (attr.type,)
    if kind == "list":
        return tuple(attr.list.type)
    return ()


def _has_kernel(node, device, registered):
    # DEFAULT kernels (variables, control flow, shape ops kept in host memory) serve a GPU, not XLA.
    devices = {device} if device.startswith("XLA") else {device, "DEFAULT"}
    for kernel in registered:
        if kernel.device_type not in devices:
            continue
        if all(set(_type_values(node.attr[c.name])) <= set(c.allowed_values.list.type)
               for c in kernel.constraint if c.name in node.attr):
            return True
    return False


def _dtypes(node):
    names = {tf.dtypes.as_dtype(t).name for attr in node.attr.values() for t in _type_values(attr)}
    return tuple(sorted(names))


def _nodes(graph_def):
    """`(function name, node)` of the graph and of every function in its library: nested bodies included."""
    for node in graph_def.node:
        yield "", node
    for function in graph_def.library.function:
        for node in function.node_def:
            yield function.signature.name, node


def ops_without_kernel(function, device="GPU", allow: Mapping[str, str] = ALLOW):
    """The ops of `function` that have no `device` kernel for their dtypes and are not allowed, in graph order.

    The graph's function library is walked too: the bodies of While/If,
    (Stateful)PartitionedCall and gradient functions hide nothing.

    Args:
        function: a `tf.types.experimental.ConcreteFunction`, a `tf.Graph` or a `GraphDef`.
        device: a kernel device type: "GPU", or "XLA_GPU_JIT" for what XLA compiles on a GPU.
        allow: op types that may run on the host, with the reason; "Op:dtype"
            allows the op only where one of its dtypes is `dtype`.

    Returns:
        A list of `Fallback`, the first being the first op that would fall back to the CPU.
    """
    if device.startswith("XLA"):
        # XLA registers its kernels (for every device) when it first compiles something in the process.
        tf.function(lambda: tf.constant(1.0) + 1.0, jit_compile=True)()
    graph = getattr(function, "graph", function)
    graph_def = graph.as_graph_def() if hasattr(graph, "as_graph_def") else graph
    called = {f.signature.name for f in graph_def.library.function}
    registered = {}  # op -> its kernels, read once per audit (XLA registers more as it is first used)
    found = []
    for where, node in _nodes(graph_def):
        if node.op in called:
            continue
        if node.op not in registered:
            registered[node.op] = kernels.get_registered_kernels_for_op(node.op).kernel
        if _has_kernel(node, device, registered[node.op]):
            continue
        if device == "GPU" or node.op != "Placeholder":  # XLA compiles a function's body; inputs are its args
            fallback = Fallback(node.op, _dtypes(node), node.name, where)
            if not (node.op in allow or any(f"{node.op}:{t}" in allow for t in fallback.dtypes)):
                found.append(fallback)
    return found


def ops_without_gpu_kernel(function, allow: Mapping[str, str] = ALLOW):
    """`ops_without_kernel(function, "GPU", allow)`: what would run on the CPU of a GPU machine."""
    return ops_without_kernel(function, "GPU", allow)


def report(fallbacks, device="GPU"):
    """One line naming the first op that would fall back, and how many others do; "" for none."""
    if not fallbacks:
        return ""
    others = len({f.op for f in fallbacks[1:]} - {fallbacks[0].op})
    more = f", and {len(fallbacks) - 1} more node(s) of {others} other op type(s)" if len(fallbacks) > 1 else ""
    effect = "XLA cannot compile it (jit_compile fails)" if device.startswith("XLA") else "it would run on the CPU"
    return (f"no {device} kernel for {fallbacks[0]}{more}: {effect}; replace it with an op that has one, or add it "
            f"to tinyresnet.gpu_audit.ALLOW with the reason")
