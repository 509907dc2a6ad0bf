"""lm/: train and evaluate a BERT-style encoder on mined tweet pairs.

Never imports dgl; runs on the pinned stack (torch 2.2.1, transformers 4.57) and on a
recent torch with transformers 5.
"""
