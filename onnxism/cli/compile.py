"""``onnxism compile``: write a method's graph as a standalone ONNX model that plain onnxruntime runs."""


import onnx

from ..errors import InputError
from ..io.npz_writer import check_output_path
from ..io.scratch import published
from ..methods.compile import compile_fast, compile_tism
from ..model.loading import load
from ..model.tokens import TOKENS_HELP
from .help import DefaultsFormatter
from .targets import TARGET_HELP, parse_target


def add_parser(verbs):
    parser = verbs.add_parser(
        "compile",
        help="write the fast-ISM or TISM graph as a standalone ONNX model",
        description=(
            "Write a standalone ONNX model that plain onnxruntime runs. --method fast: inputs are the model's "
            "sequence input (n sequences) and positions (P,) int64; outputs are the model's outputs and, per output "
            "NAME, NAME__ism (n, P, 4, *shape): f(mutant) - f(reference), 0 at the reference base; with --targets, "
            "f is the target, NAME holds the target on the sequences (n, *target_shape) and NAME__ism is (n, P, 4, "
            "*target_shape). --method tism: "
            "inputs are the sequence input (any batch N) and, per output NAME, seed__NAME (S, *NAME's shape "
            "without batch): S targets, each the scalar sum(seed * NAME); outputs are the model's outputs, "
            "gradient (S, N, *input shape) and tism (S, N, *input shape), the gradient minus its value at each "
            "position's reference base."
        ),
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("model", help="ONNX model file")
    parser.add_argument("-o", "--output", required=True, help="output .onnx file")
    parser.add_argument("--method", default="tism", choices=["tism", "fast"], help="which graph to write")
    parser.add_argument("--outputs", nargs="+", default=None, metavar="NAME", help="output names (default: all)")
    parser.add_argument("--targets", "--target", dest="targets", default=None, metavar="SPEC",
                        help="with --method fast: " + TARGET_HELP + " (the TISM graph takes its targets as seed "
                             "inputs)")
    parser.add_argument("--length", type=int, default=None,
                        help="sequence length, for a model that accepts any length (default: the model's)")
    parser.add_argument("--input", default=None, help="name of the sequence input (default: detected)")
    parser.add_argument("--layout", default=None, choices=["NLC", "NCL"], help="input layout (default: detected)")
    parser.add_argument("--tokens", default=None, metavar="SPEC", help=TOKENS_HELP)
    parser.add_argument("--positions-per-sequence", action="store_true",
                        help="fast: positions (n, P), each sequence's own, batch-first as a server's batcher wants "
                             "(default: one (P,) for every sequence)")
    parser.add_argument("--force", action="store_true", help="overwrite the output file")
    parser.set_defaults(handler=handle)


def handle(args):
    """Check the output path, call ``compile_fast`` or ``compile_tism``, save the model atomically, report."""
    check_output_path(args.output, force=args.force, suffix=".onnx")
    if args.targets is not None and args.method != "fast":
        raise InputError("--targets applies to --method fast; the TISM graph takes its targets as seed inputs")
    if args.positions_per_sequence and args.method != "fast":
        raise InputError("--positions-per-sequence applies to --method fast")
    model = load(args.model, input=args.input, layout=args.layout, tokens=args.tokens)
    if args.method == "fast":
        proto = compile_fast(model, length=args.length, outputs=args.outputs,
                             targets=parse_target(args.targets or "all"),
                             positions_per_sequence=args.positions_per_sequence)
        what = "fast ISM graph"
    else:
        proto = compile_tism(model, length=args.length, outputs=args.outputs)
        what = "gradient graph"
    with published(args.output) as scratch:
        onnx.save(proto, scratch)
    names = ", ".join(model.select_outputs(args.outputs))
    of = names if args.targets in (None, "all") else f"the {args.targets} target of {names}"
    print(f"onnxism: wrote {args.output} ({what} of {of} at length {model.sequence_length(args.length)})")
