"""``onnxism modisco``: TF-MoDISco's two input files from a result archive of ``onnxism run``."""

from ..errors import InputError
from ..io.modisco import write_modisco
from .help import DefaultsFormatter


def add_parser(verbs):
    parser = verbs.add_parser(
        "modisco",
        help="write TF-MoDISco's inputs (ohe.npz, shap.npz) from an archive of onnxism run",
        description=(
            "Write the two files modisco-lite's `modisco motifs -s OUT/ohe.npz -a OUT/shap.npz` reads, each an .npz "
            "whose arr_0 is (N, 4, W): the one-hot sequences and the hypothetical scores (the archive's scores "
            "centred over the 4 bases) of one output, over a window of the positions scored."
        ),
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("scores", help="an .npz archive written by onnxism run (--attribution delta or centred)")
    parser.add_argument("-o", "--output-folder", required=True, help="the folder to write ohe.npz and shap.npz in")
    add_output_options(parser)
    parser.add_argument("--window", default=None, metavar="START:END",
                        help="sequence positions START <= i < END, inside those scored (default: all scored)")
    parser.add_argument("--force", action="store_true", help="overwrite the files")
    parser.set_defaults(handler=handle)


def add_output_options(parser):
    """--output and --index: which scores of an archive a verb reads."""
    parser.add_argument("--output", default=None, help="the output whose scores to take (default: the only one)")
    parser.add_argument("--index", default=None, metavar="I[,J...]",
                        help="the element of an output of several per position (a track, a profile position)")


def parse_index(text):
    """"I[,J...]" -> a tuple of integers, or None."""
    return _integers(text, "--index") if text is not None else None


def handle(args):
    written = write_modisco(args.scores, args.output_folder, output=args.output, index=parse_index(args.index),
                            window=parse_window(args.window), force=args.force)
    print(f"onnxism: wrote {written[0]} and {written[1]}; run: modisco motifs -s {written[0]} -a {written[1]} "
          "-n 2000 -o modisco_results.h5")


def parse_window(text):
    """"START:END" -> (start, end), or None."""
    if text is None:
        return None
    window = _integers(text, "--window", ":")
    if len(window) != 2:
        raise InputError(f"--window must be START:END; got {text!r}")
    return window


def _integers(text, flag, separator=","):
    try:
        return tuple(int(part) for part in text.split(separator))
    except ValueError as err:
        raise InputError(f"{flag} must be integers separated by {separator!r}; got {text!r}") from err
