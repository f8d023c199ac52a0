"""Writes a benchmark's results: ``OUT.json`` (the machine, the arguments, the data) and ``OUT.md`` (the machine and
the command that made it, then the script's lines: a caption and a table), and prints the Markdown.

Invariant: nothing of the machine's own file system is recorded: ``out`` is written relative to the repository.
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_report(args, machine, data, lines):
    """``args``: the script's parsed arguments (``args.out``: the path without its extension); ``data``: what goes
    into the JSON beside the machine and arguments; ``lines``: the Markdown after the machine / command line."""
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".json", "w") as handle:
        recorded = dict(vars(args), out=os.path.relpath(args.out, ROOT))
        json.dump({"machine": machine, "args": recorded, **data}, handle, indent=1)
    script = os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)
    command = f"python {script} " + " ".join(sys.argv[1:])
    text = "\n".join([f"Machine: {machine}. Command: `{command.strip()}`", ""] + list(lines))
    with open(args.out + ".md", "w") as handle:
        handle.write(text + "\n")
    print(text)
