"""The ``onnxism`` command: thin verbs over the Python API, one module each."""

import argparse
import sys

from .. import __version__
from ..errors import OnnxismError
from . import compile, convert, info, run

VERBS = (run, compile, info, convert)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="onnxism", description="In-silico saturation mutagenesis for DNA sequence models in ONNX."
    )
    parser.add_argument("--version", action="version", version=f"onnxism {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in VERBS:
        verb.add_parser(verbs)
    return parser


def main(argv=None):
    """Entry point: parse, run the verb, turn every onnxism error into one line on stderr and exit status 1."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except OnnxismError as err:
        print(f"onnxism: error: {err}", file=sys.stderr)
        return 1
    except MemoryError:
        print("onnxism: error: out of memory; lower --batch-size", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("onnxism: interrupted; no output written", file=sys.stderr)
        return 130
