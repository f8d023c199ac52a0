"""``onnxism info``: what onnxism detects in a model."""

from ..model import load
from ..model.reading import default_opset


def add_parser(verbs):
    parser = verbs.add_parser("info", help="show the detected sequence input, layout, length and outputs")
    parser.add_argument("model", help="ONNX model file")
    parser.add_argument("--input", default=None, help="name of the sequence input (default: detected)")
    parser.add_argument("--layout", default=None, choices=["NLC", "NCL"], help="input layout (default: detected)")
    parser.set_defaults(handler=handle)


def handle(args):
    model = load(args.model, input=args.input, layout=args.layout)
    shape = "(N, L, 4)" if model.layout == "NLC" else "(N, 4, L)"
    proto = model.proto
    print(f"model:    {model.source}")
    print(f"producer: {proto.producer_name or '?'} {proto.producer_version}".rstrip()
          + f", opset {default_opset(proto)}, IR {proto.ir_version}")
    print(f"input:    {model.input_name}  layout {model.layout} {shape}  "
          f"length {model.length if model.length is not None else 'any'}  "
          f"batch {_batch(model)}")
    for extra in model.extra_inputs:
        dims = ", ".join("L" if size is None else str(size) for size in extra.shape)
        print(f"extra:    {extra.name}  shape (N{', ' + dims if dims else ''})  {extra.dtype}  "
              "(values per sequence: --extra-input NAME=FILE.npy)")
    length = model.length if model.length is not None else None
    if length is None:
        print("outputs:  " + ", ".join(model.output_names) + "  (shapes depend on the length)")
        return
    for name, out in model.output_shapes(length).items():
        print(f"output:   {name}  shape (N{''.join(', ' + str(d) for d in out)})")


def _batch(model):
    if model.fixed_batch is not None:
        return f"{model.fixed_batch} (fixed: fast ISM falls back to naive ISM)"
    if model.exported_batch is not None:
        return f"any (exported fixed at {model.exported_batch}; freed on loading)"
    return "any"
