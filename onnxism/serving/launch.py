"""Start the Triton server that ``nvidia-pytriton`` bundles (tritonserver 2.51, python backend) on a model
repository, from the server's own Python environment (``onnxism serve REPO --python ENV/bin/python``).

The server's environment is separate from onnxism's: Triton's python backend needs numpy < 2 there. What the
launch needs, learnt the hard way (docs/serving.md): the backend's stub for that Python's version copied beside
the backend library, the bundled libraries and that Python's libpython first on the linker path, that Python's
folder first on PATH (the stub takes ``sys.prefix`` from the first ``python3`` it finds), addresses bound to
127.0.0.1 unless asked otherwise, metrics off, and a short exit timeout (an open client connection otherwise holds
the server's stop for 30 s).

Invariant: the server runs as a child process; when it stops, or this process is interrupted, the child is
stopped and the backend folder made for it is removed.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request

from ..errors import InputError

_WHERE = """
import json, os, sys, sysconfig
try:
    import pytriton
except ImportError:
    print(json.dumps(None)); sys.exit(0)
root = os.path.dirname(os.path.abspath(pytriton.__file__))
print(json.dumps({"root": root, "libs": os.path.join(os.path.dirname(root), "nvidia_pytriton.libs"),
                  "version": "%d.%d" % sys.version_info[:2], "libdir": sysconfig.get_config_var("LIBDIR") or "",
                  "bin": os.path.dirname(sys.executable)}))
"""


def bundled_triton(python):
    """Where ``python``'s environment has pytriton's server: {root, libs, version, libdir, bin}."""
    if not os.path.isfile(python) or not os.access(python, os.X_OK):
        raise InputError(f"{python} is not a Python interpreter (give the server environment's bin/python)")
    found = subprocess.run([python, "-c", _WHERE], capture_output=True, text=True, timeout=120)
    if found.returncode:
        raise InputError(f"{python} cannot run: {found.stderr.strip().splitlines()[-1:]}")
    where = json.loads(found.stdout)
    if where is None:
        raise InputError(f"{python}'s environment has no nvidia-pytriton: pip install 'nvidia-pytriton==0.7.0' "
                         "'numpy<2' onnxruntime there")
    return where


def server_command(python, repository, *, backends, host="127.0.0.1", http_port=8000, grpc_port=8001,
                   exit_timeout=3, verbose=0):
    """(argv, env) that start the bundled tritonserver on ``repository``; ``backends`` is an empty folder that
    receives the python backend and its stub."""
    if not os.path.isdir(repository):
        raise InputError(f"{repository} is not a folder (write one with onnxism export triton)")
    where = bundled_triton(python)
    server = os.path.join(where["root"], "tritonserver")
    stub = os.path.join(server, "python_backend_stubs", where["version"], "triton_python_backend_stub")
    if not os.path.exists(stub):
        raise InputError(f"the bundled Triton has no python backend stub for Python {where['version']}")
    shutil.copytree(os.path.join(server, "backends", "python"), os.path.join(backends, "python"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(stub, os.path.join(backends, "python", "triton_python_backend_stub"))
    env = dict(os.environ)
    paths = [where["libdir"], where["libs"]] + ([env["LD_LIBRARY_PATH"]] if env.get("LD_LIBRARY_PATH") else [])
    env["LD_LIBRARY_PATH"] = ":".join(path for path in paths if path)
    env["PATH"] = where["bin"] + os.pathsep + env.get("PATH", "")
    argv = [os.path.join(server, "bin", "tritonserver"), "--model-repository", os.path.abspath(repository),
            "--backend-directory", backends, "--http-address", host, "--http-port", str(http_port),
            "--grpc-address", host, "--grpc-port", str(grpc_port), "--allow-metrics", "false",
            "--exit-timeout-secs", str(exit_timeout), "--log-verbose", str(verbose)]
    return argv, env


def serve(python, repository, **options):
    """Run the bundled tritonserver on ``repository`` until it stops (its exit status) or this process is
    interrupted (Ctrl-C: the server is asked to stop, status 0). The server runs in a process group of its own
    (with its backend stubs), which is killed if it has not stopped ``exit_timeout`` + 20 s after the request."""
    backends = tempfile.mkdtemp(prefix="onnxism-triton-backends-")
    process = None
    grace = options.get("exit_timeout", 3) + 20
    try:
        argv, env = server_command(python, repository, backends=backends, **options)
        process = subprocess.Popen(argv, env=env, start_new_session=True)
        try:
            return process.wait()
        except KeyboardInterrupt:
            _signal_group(process, signal.SIGINT)  # Triton's own graceful stop (its exit timeout bounds it)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                print("onnxism: notice: the server did not stop in time; killed it", file=sys.stderr)
            print("onnxism: stopped the server", file=sys.stderr)
            return 0
    finally:
        if process is not None:
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
                try:
                    process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass
            _signal_group(process, signal.SIGKILL)  # whatever is left of the group (backend stubs)
            process.wait()
        shutil.rmtree(backends, ignore_errors=True)


def _signal_group(process, signum):
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def free_port(host="127.0.0.1"):
    """A TCP port free on ``host`` now (for a server started next)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def server_ready(port, host="127.0.0.1"):
    """Whether the Triton server on ``host:port`` (HTTP) answers ready."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/v2/health/ready", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False
