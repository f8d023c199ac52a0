"""PyTorch module -> ONNX through ``torch.onnx.export``, batch axis dynamic, weights embedded."""

import os
import tempfile

import onnx

from onnxism.model.reading import repair

from ._extras import require


def torch_to_onnx(module, example_input, path=None, *, dynamo=True, opset=18, input_name="seqs",
                  output_names=None, extra_inputs=None):
    """Export ``module`` (taking (N, 4, L) or whatever ``example_input`` shows) to ONNX.

    Parameters
    ----------
    module : torch.nn.Module
        Put in eval mode before export.
    example_input : torch.Tensor
        One example batch; its batch axis is exported as dynamic.
    path : str, optional
        Where to write the .onnx file (single file, no external data).
    dynamo : bool
        True for the torch.export-based exporter (the default in torch >= 2.9), False for the legacy one.
    output_names : list of str, optional
        Names of the module's outputs, in order.
    extra_inputs : dict of str to torch.Tensor, optional
        The module's inputs after the sequences (a control track, ...), by ONNX input name, in the order
        ``forward`` takes them, each an example batch of the same size; their batch axis is dynamic too.

    Returns
    -------
    onnx.ModelProto, with an IR version onnxruntime reads.
    """
    torch = require("torch", "torch")
    module = module.eval()
    extra_inputs = dict(extra_inputs or {})
    examples = (example_input,) + tuple(extra_inputs.values())
    names = [input_name] + list(extra_inputs)
    with tempfile.TemporaryDirectory() as folder:
        target = os.path.join(folder, "model.onnx")
        with torch.no_grad():
            if dynamo:
                require("onnxscript", "torch")
                batch = torch.export.Dim("batch", min=1)
                torch.onnx.export(
                    module, examples, target, dynamo=True, external_data=False, opset_version=opset,
                    input_names=names, output_names=output_names, dynamic_shapes=tuple({0: batch} for _ in names),
                    verbose=False,
                )
            else:
                axes = {name: {0: "batch"} for name in names + list(output_names or [])}
                torch.onnx.export(
                    module, examples, target, dynamo=False, opset_version=min(opset, 20),
                    input_names=names, output_names=output_names, dynamic_axes=axes,
                )
        proto = onnx.load(target)
    proto = repair(proto, source="exported model")
    if path is not None:
        onnx.save(proto, os.fspath(path))
    return proto
