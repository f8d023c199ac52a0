"""Zoo model -> (ONNX model, framework model) through the project's converters."""

from .architectures import build_spec


def export_zoo_model(name, framework, path=None, *, dynamo=True, length=None):
    """Build zoo model ``name`` (at ``length``, if given) in ``framework`` ("torch" or "keras"), convert to ONNX.

    Returns
    -------
    (onnx.ModelProto, framework model)
        The torch model takes (N, 4, L); the Keras model takes (N, L, 4).
    """
    spec = build_spec(name, length)
    if framework == "torch":
        import torch

        from ..torch_export import torch_to_onnx
        from .to_torch import build_torch

        module = build_torch(spec)
        example = torch.zeros(2, 4, spec.length)
        names = list(spec.outputs)
        return torch_to_onnx(module, example, path, dynamo=dynamo, output_names=names), module
    if framework == "keras":
        from ..keras_export import keras_to_onnx
        from .to_keras import build_keras

        model = build_keras(spec)
        return keras_to_onnx(model, path), model
    raise ValueError(f"unknown framework {framework!r}; use 'torch' or 'keras'")
