"""Dataset manifests: the one format (``format``), the builders that make one from a dataset's published
layout (a registry, ``registry.get_builder(name)``, each builder imported when first asked for), and the
split protocols (``protocols``). Importing the package imports nothing else, so a stage that only reads a
manifest does not run (or depend on) the builders.
"""
