import pytest
import torch

from lm.config import TrainConfig
from tests.lm.synthetic import write_dataset

# Intra-op threads spin badly on a shared 2-core machine (40x slower steps than one thread).
torch.set_num_threads(1)

# A BERT small enough for 2 shared CPU cores: 2 layers, hidden 64, vocab ~600.
TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """``(pairs.parquet, GRAPH_DIR)``: 120 tweets in 6 topics, 400 same-topic pairs."""
    return write_dataset(tmp_path_factory.mktemp("lmdata"), n_tweets=120, n_pairs=400, seed=0)


def tiny_config(pairs, texts, out, **kw) -> TrainConfig:
    base = dict(pairs=str(pairs), texts=str(texts), out=str(out), from_scratch="tiny", scratch_overrides=dict(TINY),
                vocab_size=600, batch_size=8, max_steps=6, lr=1e-3, warmup_ratio=0.0, seed=0, log_every=1,
                save_every=3, max_length=32, device="cpu", progress=False)
    base.update(kw)
    return TrainConfig(**base)
