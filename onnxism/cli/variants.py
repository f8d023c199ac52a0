"""``onnxism variants``: the effect of each variant of a VCF on the model's outputs, as a table."""

import time

from ..methods.ism import METHODS
from ..methods.variant_table import variants_to_table
from ..model.loading import load
from .help import DefaultsFormatter
from .targets import TARGET_HELP, parse_target


def add_parser(verbs):
    parser = verbs.add_parser(
        "variants",
        help="score the variants of a VCF: each output on the reference and alternative sequence (a table)",
        description=(
            "Score each alternative allele of a VCF on a window of the model's length around it: the table's "
            "columns are chrom, pos, id, ref, alt as the VCF names them, then per output or target NAME/ref, "
            "NAME/alt and NAME/diff (alt - ref). SNVs are substitution rows of fast ISM's graph (one reference pass "
            "per window); indels and MNVs run the reference and the left-anchored alternative window (two forward "
            "passes). Needs pysam (the [genome] extra)."
        ),
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("model", help="ONNX model file")
    parser.add_argument("--vcf", required=True, help="VCF or BCF file (plain or bgzip-compressed)")
    parser.add_argument("--genome", required=True, metavar="FASTA", help="the genome the VCF is called against")
    parser.add_argument("-o", "--output-file", required=True, metavar="OUT",
                        help="the table: .tsv, .tsv.gz or .parquet (the [parquet] extra)")
    parser.add_argument("--method", default="fast", choices=sorted(METHODS),
                        help="SNVs by fast ISM's rows (fast) or by a forward pass per variant (naive: what peers do)")
    parser.add_argument("--targets", "--target", dest="targets", default=None, metavar="SPEC", help=TARGET_HELP)
    parser.add_argument("--outputs", nargs="+", default=None, metavar="NAME", help="output names (default: all)")
    parser.add_argument("--bin", dest="bin_size", type=int, default=1,
                        help="SNVs in one bin of this many bases share a window centred on the bin (1: each SNV "
                             "at the centre of its own window)")
    parser.add_argument("--rc", action="store_true", help="average each value with the reverse complement's")
    parser.add_argument("--log-ratio", action="store_true",
                        help="add NAME/log2_ratio, log2(alt / ref), for outputs that are positive")
    parser.add_argument("--check-ref", default="error", choices=["error", "skip"],
                        help="a REF that does not match the genome: stop with an error, or skip and count it")
    parser.add_argument("--match-chroms", action="store_true",
                        help="map chromosome names where the files differ: chr1 <-> 1, chrM <-> MT")
    parser.add_argument("--length", type=int, default=None,
                        help="window length, for a model that takes any length (else the model's)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:K")
    parser.add_argument("--batch-size", type=int, default=None, help="model rows per call (default: scaled to L)")
    parser.add_argument("--workers", type=int, default=None, help="onnxruntime calls in flight at once")
    parser.add_argument("--input", default=None, help="name of the sequence input (default: detected)")
    parser.add_argument("--layout", default=None, choices=["NLC", "NCL"], help="input layout (default: detected)")
    parser.add_argument("--force", action="store_true", help="overwrite the output file")
    parser.set_defaults(handler=handle)


def handle(args):
    began = time.perf_counter()
    model = load(args.model, input=args.input, layout=args.layout)
    rows = variants_to_table(model, args.vcf, args.genome, args.output_file, method=args.method,
                             outputs=args.outputs, targets=parse_target(args.targets or "all"), device=args.device,
                             batch_size=args.batch_size, workers=args.workers, length=args.length,
                             bin_size=args.bin_size, rc=args.rc, log_ratio=args.log_ratio,
                             check_ref=args.check_ref, match_chroms=args.match_chroms, force=args.force)
    seconds = time.perf_counter() - began
    print(f"onnxism: scored {rows} variants with {args.method} ISM on {args.device} in {seconds:.2f} s "
          f"({rows / seconds:.3g} variants/s) -> {args.output_file}")
