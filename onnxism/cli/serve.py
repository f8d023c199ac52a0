"""``onnxism serve``: start the Triton that nvidia-pytriton bundles on a model repository (docs/serving.md)."""

from ..serving.launch import serve
from .help import DefaultsFormatter


def add_parser(verbs):
    parser = verbs.add_parser(
        "serve", formatter_class=DefaultsFormatter,
        help="start the bundled Triton server on a model repository",
        description=("Run the tritonserver of nvidia-pytriton (python backend) on REPO until stopped (Ctrl-C). It "
                     "runs in a Python environment of its own, which needs nvidia-pytriton, numpy < 2 and "
                     "onnxruntime: give its interpreter with --python."))
    parser.add_argument("repository", metavar="REPO", help="model repository (onnxism export triton --backend python)")
    parser.add_argument("--python", required=True, help="the server environment's python")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: every interface)")
    parser.add_argument("--http-port", type=int, default=8000, help="HTTP port")
    parser.add_argument("--grpc-port", type=int, default=8001, help="gRPC port")
    parser.set_defaults(handler=handle)


def handle(args):
    return serve(args.python, args.repository, host=args.host, http_port=args.http_port, grpc_port=args.grpc_port)
