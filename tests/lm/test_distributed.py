"""DDP on CPU (gloo, 2 processes): the social loss over gathered embeddings equals the
single-process loss on the same global batch, and so do the parameter gradients."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from tests.lm.conftest import TINY

B_GLOBAL, LENGTH, VOCAB = 8, 12, 200


def _model():
    from transformers import BertConfig, BertForMaskedLM

    from lm.model import SocialEncoder

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=VOCAB, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **TINY)
    return SocialEncoder(BertForMaskedLM(cfg))


def _batch():
    g = torch.Generator().manual_seed(1)
    a = torch.randint(5, VOCAB, (B_GLOBAL, LENGTH), generator=g)
    b = torch.randint(5, VOCAB, (B_GLOBAL, LENGTH), generator=g)
    ids_a = torch.arange(B_GLOBAL)
    ids_b = torch.arange(B_GLOBAL) + B_GLOBAL
    ids_b[3] = ids_a[5]  # a duplicate tweet across ranks: must be masked out of the negatives
    return a, b, ids_a, ids_b


def _losses():
    from lm.losses import InfoNCELoss, TripletAngularLoss

    return {"infonce": InfoNCELoss(0.1), "triplet": TripletAngularLoss(0.2)}


def _worker(rank, world, port, out_dir):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from lm import distributed as D

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    model = _model()
    ddp = DDP(model, find_unused_parameters=True)  # the MLM head is unused without labels
    a, b, ids_a, ids_b = _batch()
    n = B_GLOBAL // world
    sl = slice(rank * n, (rank + 1) * n)
    result = {}
    for name, loss_fn in _losses().items():
        model.zero_grad(set_to_none=True)
        x = torch.cat([a[sl], b[sl]])
        emb, _ = ddp(x, torch.ones_like(x), labels=None, embed=True)
        za, zb = D.gather_with_grad(emb[:n]), D.gather_with_grad(emb[n:])
        ids = torch.cat([D.gather_no_grad(ids_a[sl]), D.gather_no_grad(ids_b[sl])])
        loss = loss_fn.compute_loss_from_embeddings(za, zb, ids=ids, rows=D.local_rows(rank, world, n))
        loss.backward()
        result[name] = {"loss": D.all_reduce_mean(loss.item(), "cpu"),
                        "grads": {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}}
    torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))
    # Leave without tearing the process group down: torch 2.2's ProcessGroupGloo destructor can
    # deadlock with its worker thread (it waits for the thread while holding the GIL; the thread
    # needs the GIL to free the last tensor of a finished collective). Seen once in CI: rank 0
    # hung in ~Reducer -> ~ProcessGroupGloo after both ranks had saved their results.
    os._exit(0)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_gather_matches_the_single_process_global_batch(tmp_path):
    torch.set_num_threads(1)
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]

    model = _model()
    a, b, ids_a, ids_b = _batch()
    for name, loss_fn in _losses().items():
        model.zero_grad(set_to_none=True)
        x = torch.cat([a, b])
        emb, _ = model(x, torch.ones_like(x), labels=None, embed=True)
        loss = loss_fn.compute_loss_from_embeddings(emb[:B_GLOBAL], emb[B_GLOBAL:], ids=torch.cat([ids_a, ids_b]))
        loss.backward()
        grads = {k: p.grad for k, p in model.named_parameters() if p.grad is not None}
        assert loss.item() > 0
        for r in ranks:
            assert r[name]["loss"] == pytest.approx(loss.item(), rel=1e-5), name
            assert r[name]["grads"].keys() == grads.keys()
            for k, g in grads.items():
                torch.testing.assert_close(r[name]["grads"][k], g, rtol=1e-4, atol=1e-6, msg=f"{name} {k}")


@pytest.mark.slow
def test_torchrun_two_processes_train_and_publish_one_model(tmp_path, dataset):
    """The real command under torchrun (gloo on CPU): ranks agree on the tokenizer and finish."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    pairs, graph = dataset
    out = tmp_path / "m"
    bin_dir = Path(sys.executable).parent
    # `-m coengage` rather than the console script: works from a checkout on PYTHONPATH too
    cmd = [str(bin_dir / "torchrun"), "--nproc-per-node", "2", "--master-port", str(_free_port()),
           "-m", "coengage", "-q", "lm", "train", "--pairs", str(pairs), "--texts", str(graph),
           "--out", str(out), "--from-scratch", "tiny", "--max-steps", "3", "--batch-size", "4", "--vocab-size", "500",
           "--max-length", "32", "--device", "cpu", "--log-every", "1", "--save-every", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["steps"] == 3
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    assert all(r["tokens"] > 0 for r in log)
