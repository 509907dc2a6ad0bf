"""Write ``graph.dgl`` without importing dgl or torch.

The build stores the forward relations of the user->tweet graph in DGL's binary format (what
``dgl.save_graphs([g])`` writes for a heterograph with node types ``tweet``/``user``, relations
``(user, T, tweet)`` in COO only, int32 ids, and the edge data ``count`` (int32) and ``time``
(int64)). Importing dgl pulls in torch: ~375 MiB of resident memory and a second or two of CPU
that a build on a small machine would rather spend on the log. So this module writes the same
bytes itself, streaming each array from the build's own buffers.

Layout (DGL 2.x heterograph serialisation, version 2), all integers little-endian:

* a 4096-byte header block: magic, version 2, graph type 2 (heterograph), number of graphs;
  the rest of the block is padding;
* the position where the graph data starts, then the (empty) label dict;
* the heterograph: its metagraph (node types sorted by name, one edge per relation from
  ``user`` to ``tweet``) as a CSR of 64-bit ids, then one unit graph per relation (relations
  sorted by name), each with its own two-type metagraph and a COO matrix of the int32 src and
  dst arrays, then the node counts per type;
* the node data (none), the edge data per relation (``count``, ``time``), the node type and
  relation names, and the index of where each graph starts.

``tests/graph/test_dglfile.py`` checks the bytes against ``dgl.save_graphs`` for graphs of
one to several relations, and that ``dgl.load_graphs`` reads our file back unchanged.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO, Sequence

import numpy as np

_FILE_MAGIC = 0xDD2E4FF046B4A13F
_FILE_VERSION = 2
_GRAPH_TYPE_HETERO = 2
_HETEROGRAPH_MAGIC = 0xDD589FBE35224ABF
_IMMUTABLE_GRAPH_MAGIC = 0xDD3C5FFE20046ABF
_CSR_MAGIC = 0xDD6CD31205DFF127
_UNIT_GRAPH_MAGIC = 0xDD2E60F0F6B4A127
_COO_MAGIC = 0xDD61FFD305DFF127
_NDARRAY_MAGIC = 0xDD5E40F096B4A13F
_HEADER_BYTES = 4096
_COO_ONLY = 1 | (1 << 32)  # sparse-format code "coo", with the flag DGL sets on saved codes
_NTYPES = ("tweet", "user")  # DGL orders node types by name: tweet = 0, user = 1
_DTYPE_CODES = {np.dtype(np.int32): (0, 32), np.dtype(np.int64): (0, 64)}


def _u64(f: BinaryIO, *values: int) -> None:
    f.write(struct.pack(f"<{len(values)}Q", *values))


def _string(f: BinaryIO, s: str) -> None:
    data = s.encode("utf-8")
    _u64(f, len(data))
    f.write(data)


def _ndarray(f: BinaryIO, arr: np.ndarray) -> None:
    """One 1-d CPU array: magic, reserved, device (CPU 0), ndim, dtype, shape, byte size, bytes."""
    arr = np.ascontiguousarray(arr)
    if arr.ndim != 1 or arr.dtype not in _DTYPE_CODES:
        raise ValueError(f"graph.dgl arrays are 1-d int32/int64, got {arr.dtype} with shape {arr.shape}")
    code, bits = _DTYPE_CODES[arr.dtype]
    f.write(struct.pack("<QQiiiBBHQQ", _NDARRAY_MAGIC, 0, 1, 0, 1, code, bits, 1, len(arr), arr.nbytes))
    if arr.nbytes:
        f.write(memoryview(arr).cast("B"))


def _csr_graph(f: BinaryIO, indptr, indices) -> None:
    """An immutable graph stored as CSR: the metagraphs (tiny, 64-bit ids)."""
    _u64(f, _IMMUTABLE_GRAPH_MAGIC, _CSR_MAGIC, len(indptr) - 1, len(indptr) - 1)
    _ndarray(f, np.asarray(indptr, np.int64))
    _ndarray(f, np.asarray(indices, np.int64))
    _ndarray(f, np.arange(len(indices), dtype=np.int64))  # edge ids
    f.write(b"\x00")  # not sorted


def write_forward_graph(path: str | os.PathLike, relations: Sequence[str], num_users: int, num_tweets: int,
                        bounds: np.ndarray, src: np.ndarray, dst: np.ndarray, time: np.ndarray,
                        count: np.ndarray) -> None:
    """Write DGL's ``graph.dgl`` for the relations ``(user, relations[r], tweet)``.

    Relation ``r``'s edges are ``src/dst/time/count[bounds[r]:bounds[r + 1]]`` (as grouped by
    ``graph.writer._edges_by_type``); ``src``/``dst`` and ``count`` are int32, ``time`` int64.
    Loading the file with ``dgl.load_graphs`` gives the graph that ``dgl.heterograph`` plus
    ``dgl.save_graphs`` would have saved from the same arrays (COO format only).
    """
    relations = list(relations)
    if len(set(relations)) != len(relations):
        raise ValueError(f"relation names must be distinct: {relations}")
    if not relations:
        raise ValueError("graph.dgl needs at least one relation")
    src, dst = np.asarray(src, np.int32), np.asarray(dst, np.int32)
    time, count = np.asarray(time, np.int64), np.asarray(count, np.int32)
    order = sorted(range(len(relations)), key=lambda r: relations[r])  # DGL sorts relations by name
    n_rel = len(relations)
    with open(path, "wb") as f:
        header = struct.pack("<4Q", _FILE_MAGIC, _FILE_VERSION, _GRAPH_TYPE_HETERO, 1)
        f.write(header + bytes(_HEADER_BYTES - len(header)))
        graph_start = _HEADER_BYTES + 8 + 8  # after this position and the empty label dict
        _u64(f, graph_start, 0)
        _u64(f, _HETEROGRAPH_MAGIC)
        _csr_graph(f, [0, 0, n_rel], [0] * n_rel)  # metagraph: every relation goes user (1) -> tweet (0)
        _u64(f, n_rel)
        for r in order:
            a, b = int(bounds[r]), int(bounds[r + 1])
            _u64(f, _UNIT_GRAPH_MAGIC, _COO_ONLY, _COO_ONLY)
            _csr_graph(f, [0, 1, 1], [1])  # the unit graph's own metagraph: src type 0 -> dst type 1
            _u64(f, _COO_MAGIC, num_tweets, num_users)
            _ndarray(f, src[a:b])
            _ndarray(f, dst[a:b])
            _ndarray(f, np.zeros(0, np.int64))  # no explicit edge ids
            f.write(b"\x00\x00")  # rows / columns not flagged as sorted
        _u64(f, len(_NTYPES), num_tweets, num_users)
        _u64(f, len(_NTYPES), 0, 0)  # node data: none
        _u64(f, n_rel)
        for r in order:
            a, b = int(bounds[r]), int(bounds[r + 1])
            _u64(f, 2)
            _string(f, "count")
            _ndarray(f, count[a:b])
            _string(f, "time")
            _ndarray(f, time[a:b])
        _u64(f, len(_NTYPES))
        for name in _NTYPES:
            _string(f, name)
        _u64(f, n_rel)
        for r in order:
            _string(f, relations[r])
        index = struct.pack("<2Q", 1, graph_start)  # where each graph starts
        _u64(f, len(index))
        f.write(index)
        _u64(f, len(index))
