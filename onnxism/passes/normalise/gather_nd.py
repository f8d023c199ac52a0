"""torch's dynamo exporter writes a gather along the length (``F.interpolate`` with 'linear' or 'nearest-exact',
``x[..., index]``) as Transpose -> GatherND (indices (K, 1)) -> Transpose back; as a Gather it is one the window
analysis reads (once the Transposes around it meet: ``transpose_sinking.py``).
"""

from onnx import helper

from ...graph.nodes import attributes
from .index import ints


def gather_nd_as_gather(node, index):
    """GatherND(data, idx (K, 1), batch_dims=0) -> Gather(data, idx[:, 0], axis=0)."""
    if node.op_type != "GatherND" or attributes(node).get("batch_dims", 0) != 0:
        return None
    indices = index.constants.get(node.input[1])
    if indices is None or indices.ndim != 2 or indices.shape[1] != 1:
        return None
    name = f"{node.output[0]}__gather_indices"
    gather = helper.make_node("Gather", [node.input[0], name], list(node.output), name=f"{node.output[0]}__gather",
                              axis=0)
    return [gather], [ints(name, indices[:, 0])]
