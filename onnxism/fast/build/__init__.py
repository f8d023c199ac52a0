"""The ISM graph builder, split by job: ``state.py`` (the Emitter with the windows' tables and gathers),
``lower.py`` (the dispatch per node), ``convs.py``, ``pooling.py``, ``columns.py``, ``pointwise.py`` and
``heads.py`` (the lowerings), ``epilogues.py`` (a Conv's bias and activation folded into it), ``layout.py`` (the
rows layout) and ``assemble.py`` (the two graphs; ``build_graphs`` is the entry point)."""

from .assemble import BuiltGraphs, build_graphs
from .tables import GatherSpec, Table

__all__ = ["BuiltGraphs", "GatherSpec", "Table", "build_graphs"]
