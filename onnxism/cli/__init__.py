"""The ``onnxism`` command: thin verbs over the Python API, one module each.

Invariant: whatever happens to a run (a bad input, an I/O error, Ctrl-C, a scheduler's SIGTERM, a closed terminal's
SIGHUP), it ends with one line on stderr, a non-zero exit status and no partial output; notices are one line each.
"""

import argparse
import signal
import sys
import threading
import warnings

from .. import __version__
from ..errors import OnnxismError, OnnxismWarning
from . import bigwig, compile, convert, export, info, modisco, plot, run, serve, variants

VERBS = (run, variants, compile, export, serve, info, modisco, plot, bigwig, convert)
#: Options whose value may begin with "-" (a negative number), which argparse would read as another option.
VALUE_OPTIONS = ("--positions",)


class Interrupted(BaseException):
    """A signal that asks the run to stop (SIGTERM, SIGHUP), raised where the run is, as Ctrl-C raises
    KeyboardInterrupt: every ``with`` block on the way out (the scratch files') cleans up."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def build_parser():
    parser = argparse.ArgumentParser(
        prog="onnxism", description="In-silico saturation mutagenesis for DNA sequence models in ONNX."
    )
    parser.add_argument("--version", action="version", version=f"onnxism {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in VERBS:
        verb.add_parser(verbs)
    return parser


def parse(argv):
    """The parsed arguments; an unknown option is reported with the usage of the verb it was given to."""
    parser = build_parser()
    argv = joined_values(list(sys.argv[1:] if argv is None else argv))
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        verbs = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
        verbs.choices[args.verb].error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def joined_values(argv):
    """``--positions -10:5`` as ``--positions=-10:5``, so that a value beginning with "-" is read as the value."""
    joined, index = [], 0
    while index < len(argv):
        if argv[index] in VALUE_OPTIONS and index + 1 < len(argv) and argv[index + 1][:1] == "-" \
                and argv[index + 1][1:2].isdigit():
            joined.append(f"{argv[index]}={argv[index + 1]}")
            index += 2
            continue
        joined.append(argv[index])
        index += 1
    return joined


def _stop(signum, frame):
    raise Interrupted(signum)


def _notice(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, OnnxismWarning):
        print(f"onnxism: notice: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv=None):
    """Entry point: parse, run the verb, turn every onnxism error into one line on stderr and exit status 1, and an
    interruption (Ctrl-C, SIGTERM, SIGHUP) into one line and the shell's status for the signal."""
    args = parse(argv)
    handlers = {}
    if threading.current_thread() is threading.main_thread():  # (signal handlers can only be set there)
        handlers = {signum: signal.signal(signum, _stop) for signum in (signal.SIGTERM, signal.SIGHUP)}
    shown, warnings.showwarning = warnings.showwarning, _notice
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
    except Interrupted as stop:
        print(f"onnxism: stopped by {signal.Signals(stop.signum).name}; no output written", file=sys.stderr)
        return 128 + stop.signum
    finally:
        warnings.showwarning = shown
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
