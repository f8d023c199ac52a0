"""Importing an optional framework with an error that says how to install it."""

import importlib

from onnxism.errors import MissingExtraError


def require(module, extra):
    """Import ``module`` or raise MissingExtraError naming ``pip install 'onnxism[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(f"{module} is needed for this: pip install 'onnxism[{extra}]'") from err
