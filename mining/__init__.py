"""mining/: the graph artifact -> positive tweet pairs (random walks, co-engagement, kNN).

Never imports dgl: it memory-maps the CSR arrays of the graph artifact.
"""
