"""``onnxism run``: score every substitution of the sequences in a file and write an .npz archive."""

import argparse
import contextlib
import os
import sys
import time

from ..errors import InputError
from ..genome import Genome, RegionSequences, read_bed
from ..io import read_npy
from ..methods.compile import compiled_length
from ..methods.ism import METHODS
from ..methods.options import resolve_window
from ..methods.tism import ATTRIBUTIONS
from ..methods.writing import ism_to_npz, tism_to_npz
from ..model.loading import load
from ..model.tokens import TOKENS_HELP
from ..scale import ism_to_npz_on_ray
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
            "tism: its first-order Taylor estimate; in the --attribution form asked for; with --targets, f is the "
            "target and the trailing shape is the target's), reference/NAME (N, *output_shape) with the "
            "predictions on the sequences as given (for ISM with --targets: the target, (N, *target_shape)), "
            "positions (W,), onehot (N, L, 4) uint8, the sequences, attribution, the form, and, for FASTA input, "
            "ids (N,). With --bed and --genome, the sequences are windows of the genome, one per region, and the "
            "archive also holds region/chrom, region/start, region/end and region/strand (N,): the windows scored."
        ),
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("model", help="ONNX model file")
    parser.add_argument("seqs", nargs="?", default=None,
                        help=".npy one-hot array (N, L, 4) in A, C, G, T order, or FASTA (.fa/.fasta, gzipped or not), "
                             "or - to read either from standard input (or none, with --bed and --genome)")
    parser.add_argument("-o", "--output", default=None,
                        help="output .npz file (default: SEQS's name with .ism.npz, or .tism.npz with --method tism, "
                             "in the current folder)")
    parser.add_argument("--method", default="fast", choices=sorted(METHODS) + ["tism"],
                        help="exact ISM (fast, naive) or Taylor ISM from gradients (tism)")
    parser.add_argument("--attribution", default=None, choices=ATTRIBUTIONS,
                        help="what each entry holds: delta (the default of ISM; tism, the default of --method tism, "
                             "is its name there), centred (minus the mean over the 4 bases: hypothetical scores), "
                             "projected (centred, at the observed base); with --method tism also gradient and "
                             "gradient_x_input")
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
    parser.add_argument("--compress", action="store_true",
                        help="deflate the archive's arrays (smaller, slower to write and to read; np.load reads it)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar on stderr (default: when stderr is a terminal)")
    add_region_options(parser)
    add_ray_options(parser)
    parser.set_defaults(handler=handle)


def add_ray_options(parser):
    """--ray and its options: the run split into shards over a Ray cluster's actors (the [ray] extra)."""
    group = parser.add_argument_group("scale-out on a Ray cluster (needs the [ray] extra)")
    group.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                       help="score shards of the sequences on Ray actors (one per GPU with --device cuda, one per CPU "
                            "otherwise) at ADDRESS (what `ray start --head` prints; none: RAY_ADDRESS or a local "
                            "Ray); shards go to OUTPUT.shards/ and are merged into OUTPUT; rerun to resume")
    group.add_argument("--actors", type=int, default=None, help="--ray: actors at once (default: one per GPU/CPU)")
    group.add_argument("--shard-size", type=int, default=None, help="--ray: sequences per shard (default: 1000)")
    group.add_argument("--keep-shards", action="store_true", help="--ray: keep OUTPUT.shards/ after the merge")


def add_region_options(parser):
    """--bed, --genome and their options: the sequences as windows of a genome (the [genome] extra)."""
    group = parser.add_argument_group("regions of a genome (needs the [genome] extra: pysam)")
    group.add_argument("--bed", default=None, metavar="FILE",
                       help="BED or narrowPeak file (gzipped or not): score the window of the model's length centred "
                            "on each region's middle, or on a narrowPeak line's summit")
    group.add_argument("--genome", default=None, metavar="FASTA",
                       help="the genome, plain or bgzip-compressed FASTA (its .fai index is made when missing)")
    group.add_argument("--strand", action="store_true",
                       help="read regions on the - strand (BED column 6) reverse-complemented")
    group.add_argument("--match-chroms", action="store_true",
                       help="map chromosome names where the files differ: chr1 <-> 1, chrM <-> MT")
    group.add_argument("--length", type=int, default=None,
                       help="window length, for a model that takes any length (else the model's)")


SEQUENCE_SUFFIXES = (".gz", ".npy", ".fa", ".fasta", ".fna", ".bed", ".narrowpeak")


def default_output(seqs, method):
    """The archive ``onnxism run`` writes without -o: the sequences file's name, its suffixes (.npy, FASTA, .gz)
    replaced by .ism.npz (.tism.npz for TISM), in the current folder."""
    name = "stdin" if seqs == "-" else os.path.basename(os.path.normpath(seqs))
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


def open_sequences(args, model, stack):
    """The sequences to score: those of the file given, or the windows of the --bed regions in --genome (the genome
    held open on ``stack``)."""
    if args.bed is None:
        if args.genome is not None:
            raise InputError("--genome needs --bed (the regions to read from it)")
        if args.seqs is None:
            raise InputError("give the sequences (.npy, FASTA or -), or --bed with --genome")
        for flag, given in (("--strand", args.strand), ("--match-chroms", args.match_chroms),
                            ("--length", args.length is not None)):
            if given:
                raise InputError(f"{flag} applies to --bed only")
        return read_sequences(args.seqs, length=model.length)
    if args.seqs is not None:
        raise InputError("give sequences or --bed, not both")
    if args.genome is None:
        raise InputError("--bed needs --genome (the FASTA the regions are read from)")
    if model.length is None and args.length is None:
        raise InputError("the model accepts any sequence length: give --length, the window scored around each region")
    length = compiled_length(model, args.length)
    regions = read_bed(args.bed)
    genome = stack.enter_context(Genome(args.genome, match_chroms=args.match_chroms))
    return RegionSequences(genome, regions, length, strand=args.strand, source=os.path.basename(args.bed))


def handle(args):
    """Read the files, call ``ism_to_npz`` or ``tism_to_npz``, report."""
    with contextlib.ExitStack() as stack:
        _run(args, stack)


def _run(args, stack):
    began = time.perf_counter()
    args.output = args.output or default_output(args.bed or args.seqs or "-", args.method)
    model = load(args.model, input=args.input, layout=args.layout, tokens=args.tokens)
    sequences = open_sequences(args, model, stack)
    window = resolve_window(parse_positions(args.positions), sequences.length)
    if args.method == "tism" and args.workers is not None:
        raise InputError("--workers applies to --method fast and naive only")
    options = dict(positions=window, device=args.device, batch_size=args.batch_size, outputs=args.outputs,
                   force=args.force, compress=args.compress,
                   progress=sys.stderr.isatty() if args.progress is None else args.progress,
                   extra_inputs=read_extra_inputs(args.extra_inputs), targets=parse_target(args.targets or "all"))
    if args.method == "tism":
        attribution = args.attribution or "tism"
        options.update(attribution=attribution)
        what = f"{attribution} from gradients"
    else:
        attribution = args.attribution or "delta"
        options.update(method=args.method, workers=args.workers, attribution=attribution)
        what = f"{args.method} ISM" + ("" if attribution == "delta" else f" ({attribution})")
    write(args, model, sequences, options)
    seconds = time.perf_counter() - began
    what += "" if args.ray is None else " on Ray"
    count, width = len(sequences), window[1] - window[0]
    scored = len(model.select_outputs(args.outputs))
    print(
        f"onnxism: scored {count} sequences x {width} positions x 3 alternatives on {scored} output(s) "
        f"with {what} on {args.device} in {seconds:.2f} s ({count / seconds:.3g} seq/s) -> {args.output}"
    )


def write(args, model, sequences, options):
    """``ism_to_npz`` or ``tism_to_npz``, or with --ray the same run sharded over a Ray cluster."""
    kind = "tism" if args.method == "tism" else "ism"
    if args.ray is None:
        for flag, given in (("--actors", args.actors is not None), ("--shard-size", args.shard_size is not None),
                            ("--keep-shards", args.keep_shards)):
            if given:
                raise InputError(f"{flag} applies to --ray only")
        (tism_to_npz if kind == "tism" else ism_to_npz)(model, sequences, args.output, **options)
        return
    ism_to_npz_on_ray(args.model, sequences, args.output, kind=kind, address=args.ray or None, actors=args.actors,
                      shard_size=args.shard_size, keep_shards=args.keep_shards, input=args.input,
                      layout=args.layout, tokens=args.tokens, **options)
