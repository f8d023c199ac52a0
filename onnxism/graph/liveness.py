"""Dead nodes: those whose outputs no graph output needs, dropped after a rewrite.

Invariant: every graph output, and every tensor a kept node reads, is computed exactly as before.
"""

from .nodes import reads


def live_nodes(nodes, outputs):
    """``nodes`` (topologically sorted) without those that none of ``outputs`` needs, in their order."""
    needed, kept = set(outputs), []
    for node in reversed(nodes):
        if any(name in needed for name in node.output if name):
            kept.append(node)
            needed.update(name for name in reads(node) if name)
    return kept[::-1]


def drop_unread(graph):
    """Remove from ``graph`` the nodes no graph output needs, then the initializers nothing reads that are not
    graph inputs."""
    kept = live_nodes(list(graph.node), {value.name for value in graph.output})
    if len(kept) != len(graph.node):
        del graph.node[:]
        graph.node.extend(kept)
    read = {name for node in graph.node for name in reads(node)}
    read |= {value.name for value in graph.input} | {value.name for value in graph.output}
    initializers = [init for init in graph.initializer if init.name in read]
    if len(initializers) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(initializers)
