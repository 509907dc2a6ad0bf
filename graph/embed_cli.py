"""`coengage graph embed GRAPH_DIR --out EMB_DIR`: parse flags into an EmbedConfig and train."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields

DESCRIPTION = """\
Train TwHIN embeddings of a graph built by `coengage graph build`: users and tweets are
co-embedded so that an engagement (u, r, t) of type r scores f = (u + r)^T t, with one
translation vector r per engagement type. Loss: -w_r log sigma(f(e)) for each edge (w_r the
type weight of the graph's config) plus -log sigma(-f(e')) over negatives that corrupt the
user or the tweet, drawn uniformly and in proportion to degree, shared per chunk of edges.
Node tables are DGL NodeEmbeddings trained with DGL's sparse Adagrad (--optimizer fused, the
default, runs the same update in one numba pass, equal to --optimizer dgl, which calls
dgl.optim.SparseAdagrad.step, up to the last bit of the square root; --optimizer rowwise is
PyTorch-BigGraph's row-wise Adagrad: one accumulator per row, half the tables' memory,
a different optimiser); relation vectors with dense Adagrad. The three
batched matrix products of a step run in bfloat16 where the CPU has native bfloat16 dot
products (--matmul-precision auto; float32 otherwise).

A fraction of edges (--holdout) is held out; after every epoch each held-out edge is ranked
against --eval-candidates random tweets (MRR, HITS@1/10/50, overall and per relation).
A checkpoint is written after every epoch to EMB_DIR.checkpoint (two slots in turn, so the
previous epoch's stays complete while the next is written; disk: two copies of the tables and
their Adagrad state); --resume continues from the latest. EMB_DIR is written atomically when
training ends:
  user.npy      float32 [num users, dim], rows in the graph's user id order
  tweet.npy     float32 [num tweets, dim], rows in the graph's tweet id order
  relation.npy  float32 [num relations, dim], in the graph's relation order
  manifest.json config, graph fingerprint, metrics, per-epoch history, timing
"""

EXAMPLE = """\
example:
  coengage graph embed /tmp/g --out /tmp/e --dim 64 --epochs 2 --seed 0
"""

# flag name -> EmbedConfig field (flags are the field names with dashes)
OPTIONS = ("dim", "epochs", "batch_size", "chunk_size", "negatives", "degree_fraction", "negative_reduction", "lr",
           "relation_lr", "init_scale", "holdout", "max_eval_edges", "eval_candidates", "seed", "threads", "optimizer",
           "matmul_precision")


def register(sub) -> None:
    from graph.embed.config import MATMUL_PRECISIONS, NEGATIVE_REDUCTIONS, OPTIMIZERS, EmbedConfig

    p = sub.add_parser("embed", help="GRAPH_DIR -> EMB_DIR (TwHIN user/tweet embeddings)", description=DESCRIPTION,
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("graph", metavar="GRAPH_DIR", help="graph artifact directory from `coengage graph build`")
    p.add_argument("--out", required=True, metavar="EMB_DIR", help="output directory (replaced atomically when training ends)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace whatever exists at EMB_DIR or EMB_DIR.checkpoint (default: only an earlier EMB_DIR "
                        "and its checkpoint are replaced; anything else is refused). Never the graph itself, nor a "
                        "directory holding it")
    p.add_argument("--resume", action="store_true",
                   help="continue from EMB_DIR.checkpoint (same graph and settings; --epochs may be raised)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown on a terminal)")
    defaults = {f.name: f.default for f in fields(EmbedConfig)}
    types = {f.name: type(f.default) for f in fields(EmbedConfig)}
    choices = {"negative_reduction": NEGATIVE_REDUCTIONS, "optimizer": OPTIMIZERS, "matmul_precision": MATMUL_PRECISIONS}
    hp = p.add_argument_group("training (defaults in brackets)")
    for name in OPTIONS:
        kwargs = {"type": types[name], "default": defaults[name], "help": f"{EmbedConfig.help(name)} [{defaults[name]}]"}
        if name in choices:
            kwargs["choices"] = choices[name]
        hp.add_argument("--" + name.replace("_", "-"), dest=name, **kwargs)
    p.set_defaults(func=run)


def run(args) -> int:
    from graph.embed import train_embeddings  # chooses OpenMP's wait policy before torch loads
    from graph.embed.config import EmbedConfig

    config = EmbedConfig(**{name: getattr(args, name) for name in OPTIONS})
    try:
        manifest = train_embeddings(args.graph, args.out, config, resume=args.resume,
                                    progress=False if args.no_progress else None, overwrite=args.overwrite)
    except KeyboardInterrupt:
        _resume_hint(args)
        raise
    m = manifest["metrics"]
    summary = {k: m[k] for k in ("mrr", "hits@1", "hits@10", "hits@50", "count")}
    print(f"wrote {args.out}: {manifest['num_nodes']['user']} users, {manifest['num_nodes']['tweet']} tweets, dim {manifest['dim']}")
    print("held-out link prediction:", json.dumps(summary))
    return 0


def _resume_hint(args) -> None:
    """After Ctrl-C: say where the last complete checkpoint is and how to continue from it."""
    import sys

    from graph.embed.train import checkpoint_dir, latest_checkpoint

    try:
        found = latest_checkpoint(checkpoint_dir(args.out))
        epoch = json.loads((found / "manifest.json").read_text())["epoch"] if found else None
    except (OSError, ValueError, KeyError):  # pragma: no cover - a damaged checkpoint: say nothing
        return
    if found is not None:
        print(f"coengage: the checkpoint after epoch {epoch} is in {found.parent}; continue with the same command "
              "and --resume", file=sys.stderr)
