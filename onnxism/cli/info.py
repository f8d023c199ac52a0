"""``onnxism info``: what onnxism detects in a model."""

from ..errors import InputError, UnsupportedGraphError
from ..graph.nodes import default_opset
from ..methods.compile import compiled_length
from ..model.loading import load
from ..model.tokens import TOKENS_HELP


def add_parser(verbs):
    parser = verbs.add_parser("info", help="show the detected sequence input, layout, length and outputs")
    parser.add_argument("model", help="ONNX model file")
    parser.add_argument("--input", default=None, help="name of the sequence input (default: detected)")
    parser.add_argument("--layout", default=None, choices=["NLC", "NCL"], help="input layout (default: detected)")
    parser.add_argument("--tokens", default=None, metavar="SPEC", help=TOKENS_HELP)
    parser.add_argument("--methods", action="store_true",
                        help="also say how fast ISM and TISM run the model: fast ISM's analysis (what it computes "
                             "on the full length, or why it falls back to naive ISM) and whether every op on the "
                             "sequence path has a gradient rule (builds both graphs: seconds on large models)")
    parser.add_argument("--length", type=int, default=None,
                        help="sequence length, for a model that takes any length: its output shapes, and --methods "
                             "(on a model of fixed length, it must be that length)")
    parser.set_defaults(handler=handle)


def handle(args):
    model = load(args.model, input=args.input, layout=args.layout, tokens=args.tokens)
    length = compiled_length(model, args.length) if args.length is not None else model.length
    shape = "(N, L, 4)" if model.layout == "NLC" else "(N, 4, L)"
    proto = model.proto
    print(f"model:    {model.source}")
    print(f"producer: {proto.producer_name or '?'} {proto.producer_version}".rstrip()
          + f", opset {default_opset(proto)}, IR {proto.ir_version}")
    print(f"input:    {model.input_name}  layout {model.layout} {shape}  "
          f"length {model.length if model.length is not None else 'any'}  "
          f"batch {_batch(model)}")
    if model.dilated:
        print(f"dilated:  {model.dilated} dilated convolution(s) written as space-to-batch (TensorFlow's form for any "
              "length) read as dilated Convs")
    if model.unrolled:
        print(f"stacked:  {model.unrolled} concatenation(s) of the sequences along the batch (a reverse complement "
              "run with them) unrolled into one copy of the layers per part")
    if model.tokens is not None:
        print(f"tokens:   {model.tokens.describe()}  (the model takes ids (N, L); onnxism gives it one-hot (N, L, 4), "
              "its token lookup folded)")
    for extra in model.extra_inputs:
        dims = ", ".join("L" if size is None else str(size) for size in extra.shape)
        print(f"extra:    {extra.name}  shape (N{', ' + dims if dims else ''})  {extra.dtype}  "
              "(values per sequence: --extra-inputs NAME=FILE.npy)")
    if length is None:
        print("outputs:  " + ", ".join(model.output_names) + "  (shapes depend on the length: give --length)")
    else:
        at = f" at length {length}" if model.length is None else ""
        for name, out in model.output_shapes(length).items():
            print(f"output:   {name}  shape (N{''.join(', ' + str(d) for d in out)}){at}")
    if args.methods:
        _methods(model, length)


def _methods(model, length):
    """fast ISM's analysis and TISM's gradient graph at ``length``, each in a line or two."""
    from ..fast.plan import build_plan
    from ..gradients import build_gradient_model
    from ..methods.fallback import fast_or_reason

    if length is None:
        raise InputError("the model takes any length: give --length for --methods")
    built, why = fast_or_reason(build_plan, model, length, model.output_names)
    if built is None:
        print(f"fast ISM: falls back to exact naive ISM: {why}")
    else:
        plan = built.plan
        by_nature, no_rule = plan.analysis.split_notices()
        heads = [notice for notice in by_nature if notice.node in plan.heads]
        full = [notice for notice in by_nature if notice not in heads]
        print("fast ISM: windowed"
              + (f"; updated incrementally (linear in a window): {_listed(heads)}" if heads else "")
              + f"; global by nature, computed on the full length: {_listed(full, 'nothing global')}"
              + (f"; no local rule, computed on the full length (exact, slower): {_listed(no_rule)}" if no_rule
                 else ""))
    try:
        build_gradient_model(model, model.output_names, length)
        print("TISM:     supported (every op on the sequence path has a gradient rule)")
    except UnsupportedGraphError as err:
        print(f"TISM:     not supported: {err}")


def _listed(notices, empty=""):
    if not notices:
        return empty
    return ", ".join(map(str, notices[:6])) + (f" and {len(notices) - 6} more" if len(notices) > 6 else "")


def _batch(model):
    if model.fixed_batch is not None:
        return f"{model.fixed_batch} (fixed: fast ISM falls back to naive ISM)"
    if model.exported_batch is not None:
        return f"any (exported fixed at {model.exported_batch}; freed on loading)"
    return "any"
