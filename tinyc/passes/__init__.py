"""Graph rewrites. Each pass is `run(graph) -> PassResult`; manager.py runs them in order."""
