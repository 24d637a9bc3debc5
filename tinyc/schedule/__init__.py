"""Patch-based inference (MCUNetV2): run the memory-heavy first stage of a CNN patch by patch.

    stage.py            which op prefixes can run on patches (split candidates)
    receptive_field.py  per axis, the input rows/cols each patch of each op needs, and its padding
    rewrite.py          the graph with the stage unrolled into per-patch ops (+ crop/place copies)
    search.py           split point and grid chosen for the smallest peak within a MAC budget
"""
