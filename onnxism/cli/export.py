"""``onnxism export triton``: a Triton model repository of the served graphs (docs/serving.md)."""

from ..serving.contract import METHODS
from ..serving.repository import export_triton
from ..serving.triton import BACKENDS, KINDS
from .help import DefaultsFormatter
from .targets import TARGET_HELP, parse_target


def add_parser(verbs):
    parser = verbs.add_parser("export", help="write a Triton model repository of the served graphs",
                              formatter_class=DefaultsFormatter)
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    triton = targets.add_parser(
        "triton", formatter_class=DefaultsFormatter,
        help="a Triton model repository", description=(
            "Write REPO/NAME_METHOD (config.pbtxt, 1/model.onnx) for each method: the served graph, every input "
            "and output batch-first so that Triton's dynamic batcher merges requests. Inputs: onehot (n, L, 4) "
            "float32, or codes (n, L) uint8 with --codes; fast also positions (n, P) int64. Outputs: the model's "
            "outputs, NAME__ism (n, P, 4, *target) for fast, NAME__tism (n, L, 4, *target) for tism."))
    triton.add_argument("model", help="ONNX model file")
    triton.add_argument("-o", "--output", required=True, metavar="REPO", help="model repository folder")
    triton.add_argument("--methods", nargs="+", default=["fast"], choices=METHODS, help="the served models")
    triton.add_argument("--backend", default="onnxruntime", choices=BACKENDS,
                        help="Triton's onnxruntime backend, or the python backend's twin (the same ONNX file run by "
                             "onnxruntime in the server, requests checked; what the Triton of nvidia-pytriton "
                             "serves)")
    triton.add_argument("--kind", default=None, choices=KINDS,
                        help="instance kind (default: gpu for the onnxruntime backend, cpu for the python backend)")
    triton.add_argument("--instances", type=int, default=1, help="instances of each model")
    triton.add_argument("--max-batch-size", type=int, default=32, help="most sequences in one (batched) request")
    triton.add_argument("--queue-delay-us", type=int, default=100, help="dynamic batcher's wait for more requests")
    triton.add_argument("--no-dynamic-batching", action="store_true", help="answer each request alone")
    triton.add_argument("--codes", action="store_true", help="take sequences as uint8 codes 0-3 (A C G T; other: N)")
    triton.add_argument("--targets", "--target", dest="targets", default=None, metavar="SPEC", help=TARGET_HELP)
    triton.add_argument("--outputs", nargs="+", default=None, metavar="NAME", help="output names (default: all)")
    triton.add_argument("--length", type=int, default=None, help="sequence length, for a model of any length")
    triton.add_argument("--name", default=None, help="models' name stem (default: the model file's name)")
    triton.add_argument("--force", action="store_true", help="replace model folders that exist")
    parser.set_defaults(handler=handle)


def handle(args):
    written = export_triton(
        args.model, args.output, methods=args.methods, backend=args.backend, kind=args.kind,
        instances=args.instances, max_batch_size=args.max_batch_size, queue_delay_us=args.queue_delay_us,
        dynamic_batching=not args.no_dynamic_batching, codes=args.codes,
        targets=parse_target(args.targets) if args.targets else None, outputs=args.outputs, length=args.length,
        name=args.name, force=args.force)
    for folder in written:
        print(f"onnxism: wrote {folder}")
