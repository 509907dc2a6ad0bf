"""coengage: graph-first engagement mining (TwHIN-BERT as software).

This small package holds what every stage shares and that must not import dgl:
the command line entry point, atomic artifact writes, manifests and fingerprints.
"""

__version__ = "0.1.0"
