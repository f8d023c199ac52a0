"""``onnxism plot``: a logo or a heatmap of one sequence's scores from an archive of ``onnxism run`` (the [plot]
extra)."""

from ..io.pictures import KINDS, draw
from .help import DefaultsFormatter
from .modisco import add_output_options, parse_index, parse_window


def add_parser(verbs):
    parser = verbs.add_parser(
        "plot",
        help="draw a logo or heatmap of one sequence's scores (needs the [plot] extra)",
        description=(
            "Draw one sequence's scores from an archive of onnxism run: --kind logo, the centred scores at the "
            "observed bases as letters (logomaker); --kind heatmap, the 4 x W scores as they are, on a colour scale "
            "centred at 0, the observed bases marked. The file's suffix picks the format: .png, .svg or .pdf."
        ),
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("scores", help="an .npz archive written by onnxism run")
    parser.add_argument("-o", "--output-file", required=True, help="the picture: .png, .svg or .pdf")
    parser.add_argument("--seq", type=int, default=0, help="the sequence, by its row in the archive")
    parser.add_argument("--kind", default="logo", choices=KINDS, help="what to draw")
    parser.add_argument("--window", default=None, metavar="START:END",
                        help="sequence positions START <= i < END, inside those scored (default: all scored)")
    add_output_options(parser)
    parser.add_argument("--force", action="store_true", help="overwrite the file")
    parser.set_defaults(handler=handle)


def handle(args):
    window = parse_window(args.window)
    draw(args.scores, args.output_file, sequence=args.seq, kind=args.kind, output=args.output,
         index=parse_index(args.index),
         window=window, force=args.force)
    print(f"onnxism: wrote {args.output_file} ({args.kind} of sequence {args.seq})")
