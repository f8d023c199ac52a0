"""``onnxism bigwig``: a bigWig track, one value per base at genome coordinates, from an archive of ``run --bed``."""

from ..io.bigwig import VALUES, write_bigwig
from .help import DefaultsFormatter
from .modisco import add_output_options, parse_index


def add_parser(verbs):
    parser = verbs.add_parser(
        "bigwig",
        help="write a bigWig track of the scores of an archive of onnxism run --bed",
        description=(
            "Write one value per base at genome coordinates: projected, the centred score at the observed base "
            "(-(sum of the 3 deltas) / 4), or mean, the mean effect of the 3 substitutions; where windows overlap, "
            "the mean of their values. Needs pyBigWig (the [genome] extra)."
        ),
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("scores", help="an .npz archive written by onnxism run --bed FILE --genome FASTA")
    parser.add_argument("--genome", required=True, metavar="FASTA", help="the genome the regions were read from")
    parser.add_argument("-o", "--output-file", required=True, metavar="OUT.bw", help="the bigWig file to write")
    parser.add_argument("--value", default="projected", choices=VALUES, help="the value of each base")
    add_output_options(parser)
    parser.add_argument("--force", action="store_true", help="overwrite the file")
    parser.set_defaults(handler=handle)


def handle(args):
    path = write_bigwig(args.scores, args.genome, args.output_file, output=args.output, index=parse_index(args.index),
                        value=args.value, force=args.force)
    print(f"onnxism: wrote {path} ({args.value} value per base)")
