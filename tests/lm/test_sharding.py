"""Per-rank data sharding of `coengage lm train` under torchrun: within an epoch, the union of
all ranks' pairs is a partition of the corpus minus the documented dropped remainder.

How the trainer shards (lm/train.py, lm/data.py): micro-batch ``k`` is a slice of one seeded
permutation of all pairs of size ``batch_size * world`` (:class:`lm.data.PairBatches`), and rank
``r`` takes rows ``[r*B, (r+1)*B)`` of it (``Trainer.micro_batch``). The last
``N mod (B*world)`` pairs of each epoch's permutation are dropped so every rank's share has the
same size (DDP needs equal steps and the in-batch-negative gather needs equal shapes).

* the fast test drives the real ``Trainer.micro_batch`` per rank on a stand-in trainer whose
  pairs are identifiable (pair i = texts (i, N+i)), for world sizes 1, 2 and 3;
* the slow test builds real ``Trainer`` objects (DDP-wrapped) in 3 gloo processes and checks the
  same property on what each rank actually reads.
"""

import os
import socket
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from lm.data import PairBatches, TokenizedTexts
from lm.train import Trainer
from tests.lm.conftest import TINY


def _stand_in(n_pairs: int, batch: int, world: int, rank: int, seed: int, group: int):
    """An object with exactly the attributes ``Trainer.micro_batch`` reads; pair i = texts (i, n+i)."""
    rng = np.random.default_rng(123)
    lengths = rng.integers(3, 30, 2 * n_pairs)
    offsets = np.zeros(2 * n_pairs + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = rng.integers(10, 100, int(offsets[-1])).astype(np.int32)
    tokens = TokenizedTexts(ids, offsets)
    a, b = np.arange(n_pairs), np.arange(n_pairs) + n_pairs
    pair_len = np.maximum(tokens.lengths[a], tokens.lengths[b])
    return SimpleNamespace(
        config=SimpleNamespace(batch_size=batch, seed=seed, mlm_probability=0.15),
        dist=SimpleNamespace(rank=rank, world_size=world),
        # constructed as Trainer.__init__ does: global micro-batches of batch_size * world pairs
        batches=PairBatches(pair_len, batch * world, seed, group),
        corpus=SimpleNamespace(a=a, b=b), tokens=tokens, pad_id=0, pad_multiple=1,
        tokenizer=SimpleNamespace(mask_token_id=4), special_ids={0, 1, 2, 3, 4}, vocab_size=100)


def _pairs_read(trainer, k: int) -> np.ndarray:
    """Pair indices of this rank's share of micro-batch k, from the text indices micro_batch returns."""
    text_idx = Trainer.micro_batch(trainer, k)[4].numpy()
    B = trainer.config.batch_size
    a, b = text_idx[:B], text_idx[B:]
    n = len(trainer.corpus.a)
    assert np.array_equal(b, a + n), "a rank's a- and b-texts must come from the same pairs"
    return a


@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("group", [1, 50])
def test_each_epoch_is_a_partition_across_ranks(world, group):
    n_pairs, batch, seed = 1000, 7, 5  # 1000 = 47*21 + 13: a remainder for every world size
    ranks = [_stand_in(n_pairs, batch, world, r, seed, group) for r in range(world)]
    per_epoch = n_pairs // (batch * world)
    assert all(t.batches.per_epoch == per_epoch for t in ranks)
    dropped_per_epoch = []
    for epoch in range(2):
        seen = Counter()
        for k in range(epoch * per_epoch, (epoch + 1) * per_epoch):
            shares = [_pairs_read(t, k) for t in ranks]
            assert all(len(s) == batch for s in shares)  # equal shares: DDP steps and gathers line up
            for s in shares:
                seen.update(s.tolist())
        dup = [p for p, c in seen.items() if c > 1]
        assert not dup, f"world {world}: pairs read twice in epoch {epoch}: {dup[:10]}"
        missing = set(range(n_pairs)) - set(seen)
        assert len(seen) == per_epoch * batch * world
        assert len(missing) == n_pairs % (batch * world)  # only the documented remainder is left out
        dropped_per_epoch.append(missing)
    # the remainder is re-drawn each epoch, so no pair is left out for good
    assert dropped_per_epoch[0] != dropped_per_epoch[1]


def test_the_global_batch_does_not_depend_on_how_it_is_split():
    """World 1 with batch 6 reads the same pairs per micro-batch as world 2 x 3 and world 3 x 2."""
    n_pairs, seed = 500, 9
    one = _stand_in(n_pairs, 6, 1, 0, seed, 50)
    for world, batch in ((2, 3), (3, 2)):
        ranks = [_stand_in(n_pairs, batch, world, r, seed, 50) for r in range(world)]
        for k in range(0, 2 * one.batches.per_epoch, 7):
            split = np.concatenate([_pairs_read(t, k) for t in ranks])
            assert np.array_equal(split, _pairs_read(one, k)), (world, k)


# --------------------------------------------------------------------------- real trainers, gloo
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, pairs, graph, out_dir):
    import torch.distributed as dist

    from lm import distributed as D
    from lm.config import TrainConfig
    from lm.train import build_model, open_workdir, prepare_corpus

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    info = D.DistInfo(rank, world, 0)
    config = TrainConfig(pairs=str(pairs), texts=str(graph), out=os.path.join(out_dir, "model"), from_scratch="tiny",
                         scratch_overrides=dict(TINY), vocab_size=600, batch_size=5, epochs=1, seed=3,
                         max_length=32, device="cpu", progress=False)
    inputs = prepare_corpus(config)
    work, _ = open_workdir(config, info.is_main)
    model, tokenizer, _ = build_model(config, inputs.corpus, work, info.is_main)
    trainer = Trainer(config, model, tokenizer, inputs.corpus, work, info)
    reads = [trainer.micro_batch(k)[4].numpy() for k in range(trainer.batches.per_epoch)]
    np.savez(os.path.join(out_dir, f"rank{rank}.npz"), reads=np.stack(reads), a=inputs.corpus.a, b=inputs.corpus.b,
             per_epoch=trainer.batches.per_epoch, total_steps=trainer.total_steps)
    os._exit(0)  # no process-group teardown: see tests/lm/test_distributed.py::_worker


@pytest.fixture(scope="module")
def unique_pairs(tmp_path_factory, dataset):
    """The lm test dataset's pairs with repeated unordered pairs removed, so a pair is known by its texts."""
    import pandas as pd

    pairs, graph = dataset
    df = pd.read_parquet(pairs)
    key = [tuple(sorted(x)) for x in zip(df["tweet_a"], df["tweet_b"])]
    df = df[~pd.Series(key).duplicated().to_numpy()].reset_index(drop=True)
    path = tmp_path_factory.mktemp("shard") / "pairs.parquet"
    df.to_parquet(path, index=False)
    return path, graph


@pytest.mark.slow
def test_real_trainers_under_gloo_read_each_pair_at_most_once_per_epoch(unique_pairs, tmp_path):
    world = 3  # world 2 is covered by the fast tests above; 3 processes cost ~1 min on 2 loaded cores
    pairs, graph = unique_pairs
    torch.set_num_threads(1)
    mp.spawn(_worker, args=(world, _free_port(), str(pairs), str(graph), str(tmp_path)), nprocs=world, join=True)
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(world)]
    a, b = ranks[0]["a"], ranks[0]["b"]
    n_pairs, B = len(a), 5
    assert all(np.array_equal(r["a"], a) and np.array_equal(r["b"], b) for r in ranks)  # same corpus on every rank
    pair_of = {(int(x), int(y)): i for i, (x, y) in enumerate(zip(a, b))}
    assert len(pair_of) == n_pairs  # pairs are identifiable by their texts
    per_epoch = int(ranks[0]["per_epoch"])
    assert per_epoch == n_pairs // (B * world)
    assert int(ranks[0]["total_steps"]) == per_epoch  # one epoch = every global micro-batch once
    seen = Counter()
    for r in ranks:
        reads = r["reads"]  # [per_epoch, 2B] text indices: a-texts then b-texts
        assert reads.shape == (per_epoch, 2 * B)
        for row in reads:
            seen.update(pair_of[(int(x), int(y))] for x, y in zip(row[:B], row[B:]))
    assert max(seen.values()) == 1, "a pair was read twice within the epoch"
    assert len(seen) == per_epoch * B * world
    assert n_pairs - len(seen) == n_pairs % (B * world)
