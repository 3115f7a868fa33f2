"""Inspect traced graphs for host round trips, the property that lets a loop run on a GPU."""

from __future__ import annotations

# Ops that call back into the Python interpreter: each one is a device -> host -> device
# trip per execution.
HOST_ROUND_TRIP_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc", "NumpyFunction"})


def find_host_round_trips(concrete_fn) -> list[str]:  # noqa: ANN001
    """Ops of a ConcreteFunction that call back into Python, as `function/node:op` strings.

    Loop bodies, conds and nested tf.functions live in the graph's function library, not
    among its top-level nodes, so the library is walked as well.
    """
    graph_def = concrete_fn.graph.as_graph_def()
    nodes = [("<top>", node) for node in graph_def.node]
    for function in graph_def.library.function:
        nodes += [(function.signature.name, node) for node in function.node_def]
    return [f"{fn}/{n.name}:{n.op}" for fn, n in nodes if n.op in HOST_ROUND_TRIP_OPS]
