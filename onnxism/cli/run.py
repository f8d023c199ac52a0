"""``onnxism run``: score every substitution of the sequences in a file and write an .npz archive."""

import argparse
import os
import sys
import time

from ..errors import InputError
from ..io import read_npy
from ..methods.ism import METHODS
from ..methods.options import resolve_window
from ..methods.tism import ATTRIBUTIONS
from ..methods.writing import ism_to_npz, tism_to_npz
from ..model.loading import load
from ..model.tokens import TOKENS_HELP
from ..sequences import read_sequences
from .help import DefaultsFormatter
from .targets import TARGET_HELP, parse_target


def add_parser(verbs):
    parser = verbs.add_parser(
        "run",
        help="score every single-base substitution (ISM) and write an .npz",
        description=(
            "Score every single-base substitution of each sequence and write an .npz archive holding, per model "
            "output NAME, the array NAME (N, W, 4, *output_shape) of f(mutant) - f(reference) (with --method "
            "tism: its first-order Taylor estimate, or the --attribution asked for; with --targets, f is the target "
            "and the trailing shape is the target's), reference/NAME (N, *output_shape) with the predictions on "
            "the sequences as given (for ISM with --targets: the target, (N, *target_shape)), positions (W,) "
            "and, for FASTA input, ids (N,)."
        ),
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("model", help="ONNX model file")
    parser.add_argument("seqs", help=".npy one-hot array (N, L, 4) in A, C, G, T order, or FASTA (.fa/.fasta)")
    parser.add_argument("-o", "--output", default=None,
                        help="output .npz file (default: SEQS's name with .ism.npz, or .tism.npz with --method tism, "
                             "in the current folder)")
    parser.add_argument("--method", default="fast", choices=sorted(METHODS) + ["tism"],
                        help="exact ISM (fast, naive) or Taylor ISM from gradients (tism)")
    parser.add_argument("--attribution", default=None, choices=ATTRIBUTIONS,
                        help="with --method tism: what to write from the gradient g")
    parser.add_argument("--targets", "--target", dest="targets", default=None, metavar="SPEC", help=TARGET_HELP)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:K")
    parser.add_argument("--batch-size", type=int, default=None, help="model rows per call (default: scaled to L)")
    parser.add_argument("--workers", type=int, default=None,
                        help="ISM: onnxruntime calls in flight at once (default on the CPU: 2 for fast, 1 for "
                             "naive; 1 on CUDA)")
    parser.add_argument("--positions", default=None, metavar="START:END",
                        help="mutate only positions START <= i < END (default: all)")
    parser.add_argument("--outputs", nargs="+", default=None, metavar="NAME", help="output names (default: all)")
    parser.add_argument("--input", default=None, help="name of the sequence input (default: detected)")
    parser.add_argument("--extra-inputs", "--extra-input", dest="extra_inputs", action="append", default=None,
                        metavar="NAME=FILE.npy",
                        help="values of a model input besides the sequences, one row per sequence (repeat for each)")
    parser.add_argument("--layout", default=None, choices=["NLC", "NCL"], help="input layout (default: detected)")
    parser.add_argument("--tokens", default=None, metavar="SPEC", help=TOKENS_HELP)
    parser.add_argument("--force", action="store_true", help="overwrite the output file")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar on stderr (default: when stderr is a terminal)")
    parser.set_defaults(handler=handle)


SEQUENCE_SUFFIXES = (".gz", ".npy", ".fa", ".fasta", ".fna")


def default_output(seqs, method):
    """The archive ``onnxism run`` writes without -o: the sequences file's name, its suffixes (.npy, FASTA, .gz)
    replaced by .ism.npz (.tism.npz for TISM), in the current folder."""
    name = os.path.basename(os.path.normpath(seqs))
    for suffix in SEQUENCE_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name + (".tism.npz" if method == "tism" else ".ism.npz")


def read_extra_inputs(items):
    """["NAME=FILE.npy", ...] -> {name: array} (None when there are none)."""
    if not items:
        return None
    values = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--extra-inputs must be NAME=FILE.npy; got {item!r}")
        if name in values:
            raise InputError(f"--extra-inputs {name} is given twice")
        try:
            values[name] = read_npy(path)
        except InputError as err:
            raise InputError(f"--extra-inputs {name}: {err}") from err
    return values


def parse_positions(text):
    """"START:END" (either side may be empty) -> (start, end) with None for an empty side."""
    if text is None:
        return None
    parts = text.split(":")
    if len(parts) != 2:
        raise InputError(f"--positions must be START:END, e.g. 100:200; got {text!r}")
    try:
        return tuple(int(part) if part.strip() else None for part in parts)
    except ValueError as err:
        raise InputError(f"--positions must be two integers START:END; got {text!r}") from err


def handle(args):
    """Read the files, call ``ism_to_npz`` or ``tism_to_npz``, report."""
    began = time.perf_counter()
    args.output = args.output or default_output(args.seqs, args.method)
    model = load(args.model, input=args.input, layout=args.layout, tokens=args.tokens)
    sequences = read_sequences(args.seqs, length=model.length)
    window = resolve_window(parse_positions(args.positions), sequences.length)
    if args.method != "tism" and args.attribution is not None:
        raise InputError("--attribution applies to --method tism only")
    if args.method == "tism" and args.workers is not None:
        raise InputError("--workers applies to --method fast and naive only")
    options = dict(positions=window, device=args.device, batch_size=args.batch_size, outputs=args.outputs,
                   progress=sys.stderr.isatty() if args.progress is None else args.progress,
                   extra_inputs=read_extra_inputs(args.extra_inputs), targets=parse_target(args.targets or "all"))
    if args.method == "tism":
        attribution = args.attribution or "tism"
        tism_to_npz(model, sequences, args.output, force=args.force, attribution=attribution, **options)
        what = f"{attribution} from gradients"
    else:
        ism_to_npz(model, sequences, args.output, force=args.force, method=args.method, workers=args.workers,
                   **options)
        what = f"{args.method} ISM"
    seconds = time.perf_counter() - began
    count, width = len(sequences), window[1] - window[0]
    scored = len(model.select_outputs(args.outputs))
    print(
        f"onnxism: scored {count} sequences x {width} positions x 3 alternatives on {scored} output(s) "
        f"with {what} on {args.device} in {seconds:.2f} s ({count / seconds:.3g} seq/s) -> {args.output}"
    )
