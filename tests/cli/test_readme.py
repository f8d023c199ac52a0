"""README.md is executed: every command it shows runs here, so that the README cannot rot.

The test reads README.md's fenced blocks in order and runs them in one temporary folder that holds a copy of the
repository's examples/ (the README's commands use only the bundled example), with this checkout's ``onnxism`` first
on the import path (PYTHONPATH), in fresh processes of the current interpreter:

- a ```sh block is one command per line (a line ending in ``\\`` continues on the next); ``onnxism ...`` runs as
  ``[sys.executable, "-m", "onnxism", ...]`` and ``python ...`` as ``[sys.executable, ...]``; any other command
  must carry the skip marker below. A command must exit with status 0, unless its comment says
  ``# exit status N: <why>``: then it must exit with N, print exactly one line on stderr starting
  ``onnxism: error:``, and leave its ``-o`` output file unwritten.
- a ```python block is one script, run as ``[sys.executable, FILE]``; it may read the files that earlier blocks
  wrote (blocks run in the README's order).
- blocks in other languages, or none (sample output), are not run.

**The skip marker** is a comment ``# not run by tests/cli/test_readme.py: <why>``: on a line of a ```sh block it skips
that command, on the first line of a ```python block the whole block. Use it only for what cannot run in a test
(``make demo``, ``make test``, ``pip install ...``, GPU commands, converting a file that does not exist); every
other command must run on the bundled example. Failures are collected and reported together, each with its README
line.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = os.path.join(ROOT, "README.md")
SKIP = "not run by tests/cli/test_readme.py"
EXIT_STATUS = re.compile(r"exit status (\d+)")
FENCE = re.compile(r"^```(\S*)\s*$")
TIMEOUT = 120


def readme_blocks(path=README):
    """[(language, first line number, [lines])] of the fenced blocks of ``path``, in order."""
    blocks, current = [], None
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            fence = FENCE.match(line.rstrip("\n"))
            if current is None and fence:
                current = (fence.group(1), number + 1, [])
            elif current is not None and line.startswith("```"):
                blocks.append(current)
                current = None
            elif current is not None:
                current[2].append(line.rstrip("\n"))
    assert current is None, f"{path}: the block opened at line {current[1] - 1} is never closed"
    return blocks


def shell_commands(first, lines):
    """[(line number, command text, comment)] of a ```sh block whose first line is line ``first``."""
    commands, pending, start = [], "", None
    for number, line in enumerate(lines, start=first):
        if not line.strip() and not pending:
            continue
        start = number if not pending else start
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text, comment = split_comment(pending + line)
        pending = ""
        commands.append((start, text.strip(), comment))
    assert not pending, f"README.md line {start}: a command continues past the end of its block"
    return commands


def split_comment(line):
    """(command, comment) of a shell line: the comment starts at the first ``#`` outside quotes after a space."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index], line[index + 1:].strip()
    return line, ""


def argv_of(words):
    """The process to start for a README command, or None where the test cannot run it."""
    if words[0] == "onnxism":
        return [sys.executable, "-m", "onnxism", *words[1:]]
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    return None


def output_file(words):
    """The ``-o`` / ``--output`` file a command names, or None."""
    for flag in ("-o", "--output"):
        if flag in words[:-1]:
            return words[words.index(flag) + 1]
    return None


def environment():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def run(argv, folder, env):
    try:
        return subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as err:
        return subprocess.CompletedProcess(argv, -1, err.stdout or "", f"timed out after {TIMEOUT} s")


def check_command(number, text, comment, folder, env):
    """None where the README's command on line ``number`` behaves as its comment says, else why not."""
    words = shlex.split(text)
    argv = argv_of(words)
    if argv is None:
        return f"line {number}: `{text}` is neither onnxism nor python: run it here or mark it '# {SKIP}: <why>'"
    expected = EXIT_STATUS.search(comment)
    status = int(expected.group(1)) if expected else 0
    output = output_file(words)
    done = run(argv, folder, env)
    if done.returncode != status:
        return (f"line {number}: `{text}` exited with status {done.returncode}, expected {status}\n"
                f"{tail(done.stderr or done.stdout)}")
    if status:
        lines = done.stderr.strip().splitlines()
        if len(lines) != 1 or not lines[0].startswith("onnxism: error:"):
            return f"line {number}: `{text}` should print one 'onnxism: error: ...' line on stderr; got\n{done.stderr}"
        if output and os.path.exists(os.path.join(folder, output)):
            return f"line {number}: `{text}` failed but left its output {output}"
    return None


def check_script(number, lines, folder, env):
    """None where the README's ```python block starting on line ``number`` runs, else why not."""
    script = os.path.join(folder, f"readme_line_{number}.py")
    with open(script, "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    done = run([sys.executable, script], folder, env)
    if done.returncode != 0:
        return f"line {number}: the python block failed (status {done.returncode})\n{tail(done.stderr)}"
    return None


def tail(text, lines=8):
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])


def test_readme_blocks_are_runnable_or_marked():
    """Every ```sh line runs onnxism or python, or says why the test does not run it; the README has both kinds."""
    blocks = readme_blocks()
    assert {"sh", "python"} <= {language for language, _, _ in blocks}
    for language, first, lines in blocks:
        if language != "sh":
            continue
        for number, text, comment in shell_commands(first, lines):
            if SKIP in comment:
                assert comment.startswith(SKIP + ":") and comment[len(SKIP) + 1:].strip(), (
                    f"README.md line {number}: the skip marker must say why: '# {SKIP}: <why>'")
            else:
                assert argv_of(shlex.split(text)) is not None, (
                    f"README.md line {number}: `{text}` cannot run here; mark it '# {SKIP}: <why>'")


def test_readme_commands_run(tmp_path):
    """Run every command and Python block of README.md, in order, on the bundled example."""
    folder = str(tmp_path)
    shutil.copytree(os.path.join(ROOT, "examples"), os.path.join(folder, "examples"))
    env = environment()
    found = run([sys.executable, "-c", "import onnxism; print(onnxism.__file__)"], folder, env)
    assert found.stdout.startswith(os.path.join(ROOT, "onnxism")), f"imported another onnxism: {found.stdout}"
    failures, ran = [], 0
    for language, first, lines in readme_blocks():
        if language == "sh":
            for number, text, comment in shell_commands(first, lines):
                if SKIP not in comment:
                    ran += 1
                    failures.append(check_command(number, text, comment, folder, env))
        elif language == "python" and lines and SKIP not in lines[0]:
            ran += 1
            failures.append(check_script(first, lines, folder, env))
    failures = [failure for failure in failures if failure]
    assert ran > 0
    assert not failures, f"{len(failures)} of {ran} README.md commands failed:\n" + "\n".join(failures)
