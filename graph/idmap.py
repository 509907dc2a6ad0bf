"""String id -> integer id with one persistent hash table per id column (no per-chunk unify).

:class:`IdTable` reads the Arrow buffers of a string column (offsets + UTF-8 bytes) in a
Numba kernel that hashes each row once and probes one open-addressing table that lives for
the whole build, so ids are numbered in order of first appearance without a second pass
over per-chunk dictionaries. The kernel releases the GIL: the user and tweet columns are
encoded on two threads at once. Rows are hashed in groups of 32 whose first table slot and
candidate bytes are loaded together, so the cache misses overlap.

Null, empty and whitespace-only ids get code -1. The distinct ids are one contiguous byte
buffer and come back as a ``pyarrow`` string array (:meth:`IdTable.ids`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from coengage.errors import InputError

_EMPTY = np.int64(-1)
_BATCH = 32  # rows hashed and prefetched together
_LEN_MAX = np.int64((1 << 20) - 1)  # longer ids keep their length in uoff only
_REAL, _BLANK, _MAYBE = 0, 1, 2  # blank flag of a distinct id (_MAYBE: whitespace + non-ASCII bytes)


@njit(nogil=True, cache=True, inline="always")
def _mix(h):
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


@njit(nogil=True, cache=True)
def _hash(data, a, b):
    """64-bit hash of ``data[a:b]``, 8 bytes at a time."""
    h = np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(b - a)
    i = a
    while i + 8 <= b:
        w = np.uint64(0)
        for k in range(8):
            w |= np.uint64(data[i + k]) << np.uint64(8 * k)
        h = _mix(h ^ w)
        i += 8
    if i < b:
        w = np.uint64(0)
        for k in range(b - i):
            w |= np.uint64(data[i + k]) << np.uint64(8 * k)
        h = _mix(h ^ w ^ np.uint64(0xA5A5A5A5))
    return h


@njit(nogil=True, cache=True)
def _blank_flag(data, a, b):
    flag = 1
    for i in range(a, b):
        c = data[i]
        if c == 32 or (9 <= c <= 13):
            continue
        if c >= 128:
            flag = 2
            continue
        return 0
    return flag


@njit(nogil=True, cache=True)
def _encode(data, offsets, valid, has_valid, start, slots, store, uoff, blank, state, codes):
    """Codes of rows ``start..`` of one string column chunk; returns the next row to do.

    Stops early (returning that row) when the table would pass half full or the distinct-id
    buffers are full; the caller grows them and calls again. ``state`` is
    ``[n_distinct, n_bytes, scratch]``. A slot is ``[tag << 31 | id, offset << 20 | length]``.
    """
    mask = np.int64(len(slots) - 1)
    n_ids = state[0]
    n_bytes = state[1]
    limit = len(slots) // 2
    n = len(offsets) - 1
    hashes = np.empty(_BATCH, np.uint64)
    touch = np.int64(0)
    for r in range(start, n):
        k0 = (r - start) % _BATCH
        if k0 == 0:
            for q in range(min(_BATCH, n - r)):
                hq = _hash(data, offsets[r + q], offsets[r + q + 1])
                hashes[q] = hq
                iq = np.int64(hq & np.uint64(mask))
                sq = slots[iq, 1]
                if sq != -1:
                    touch += store[sq >> np.int64(20)] + slots[iq, 0]
        if has_valid and not valid[r]:
            codes[r] = -1
            continue
        a = offsets[r]
        b = offsets[r + 1]
        length = b - a
        h = hashes[k0]
        tag = np.int64(h >> np.uint64(33))
        i = np.int64(h & np.uint64(mask))
        while True:
            s = slots[i, 0]
            if s == -1:  # a new id
                if n_ids >= limit or n_ids + 1 >= len(uoff) or n_bytes + length > len(store):
                    state[0] = n_ids
                    state[1] = n_bytes
                    state[2] = touch
                    return r
                for k in range(length):
                    store[n_bytes + k] = data[a + k]
                uoff[n_ids] = n_bytes
                uoff[n_ids + 1] = n_bytes + length
                blank[n_ids] = _blank_flag(data, a, b)
                slots[i, 0] = (tag << np.int64(31)) | n_ids
                slots[i, 1] = (n_bytes << np.int64(20)) | min(length, _LEN_MAX)
                n_bytes += length
                codes[r] = -1 if blank[n_ids] == 1 else n_ids
                n_ids += 1
                break
            if (s >> np.int64(31)) == tag:
                j = s & np.int64(0x7FFFFFFF)
                loc = slots[i, 1]
                p = loc >> np.int64(20)
                m = loc & _LEN_MAX
                if m == _LEN_MAX:
                    m = uoff[j + 1] - p
                if m == length:
                    same = True
                    for k in range(length):
                        if store[p + k] != data[a + k]:
                            same = False
                            break
                    if same:
                        codes[r] = -1 if blank[j] == 1 else j
                        break
            i = (i + 1) & mask
    state[0] = n_ids
    state[1] = n_bytes
    state[2] = touch  # keeps the prefetch loads from being optimised away
    return n


@njit(nogil=True, cache=True)
def _rehash(store, uoff, n_ids, slots):
    mask = np.int64(len(slots) - 1)
    for j in range(n_ids):
        h = _hash(store, uoff[j], uoff[j + 1])
        tag = np.int64(h >> np.uint64(33))
        i = np.int64(h & np.uint64(mask))
        while slots[i, 0] != -1:
            i = (i + 1) & mask
        slots[i, 0] = (tag << np.int64(31)) | j
        slots[i, 1] = (uoff[j] << np.int64(20)) | min(uoff[j + 1] - uoff[j], _LEN_MAX)


def _string_array(arr: pa.Array) -> pa.Array:
    """``arr`` as strings: integers become decimal strings; floating-point ids are refused."""
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return arr
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    if pa.types.is_floating(t):
        raise InputError(f"ids are floating-point numbers ({t}); ids must be strings or integers")
    try:
        return pc.cast(arr, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise InputError(f"ids of type {t} cannot be read as strings ({e})") from None


class IdTable:
    """Distinct string ids of one column, numbered in order of first appearance.

    ``encode(array)`` returns int32 codes (-1 for null, empty or whitespace-only ids). Not
    thread-safe: one thread per table at a time (different tables may run concurrently).
    """

    def __init__(self, capacity: int = 1 << 16):
        cap = 1 << max(4, int(capacity - 1).bit_length())
        self._slots = np.full((2 * cap, 2), _EMPTY, np.int64)
        self._uoff = np.zeros(cap + 1, np.int64)
        self._blank = np.zeros(cap, np.int8)
        self._store = np.empty(cap * 16, np.uint8)
        self._state = np.zeros(3, np.int64)

    def __len__(self) -> int:
        return int(self._state[0])

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self._slots, self._uoff, self._blank, self._store))

    def _grow(self, need_bytes: int) -> None:
        n_ids, n_bytes = int(self._state[0]), int(self._state[1])
        if n_ids >= len(self._slots) // 2 or n_ids + 1 >= len(self._uoff):
            cap = 2 * len(self._uoff)
            self._uoff = np.resize(self._uoff, cap)
            self._blank = np.resize(self._blank, cap)
            self._slots = np.full((2 * len(self._slots), 2), _EMPTY, np.int64)
            _rehash(self._store, self._uoff, n_ids, self._slots)
        if n_bytes + need_bytes > len(self._store):
            self._store = np.resize(self._store, max(2 * len(self._store), n_bytes + need_bytes))

    def encode(self, arr) -> np.ndarray:
        if isinstance(arr, pa.ChunkedArray):
            parts = [self.encode(c) for c in arr.chunks]
            return np.concatenate(parts) if parts else np.zeros(0, np.int32)
        if pa.types.is_dictionary(arr.type):
            dict_codes = self.encode(arr.dictionary)
            idx = arr.indices
            if idx.null_count:
                idx = pc.fill_null(idx, -1)
            idx = idx.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
            return np.append(dict_codes, np.int32(-1))[idx]  # a null index (-1) takes the appended -1
        arr = _string_array(arr)
        n = len(arr)
        codes = np.empty(n, np.int32)
        if n == 0:
            return codes
        bufs = arr.buffers()
        off_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
        offsets = np.frombuffer(bufs[1], dtype=off_type, count=arr.offset + n + 1)[arr.offset:]
        data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None and bufs[2].size else np.zeros(1, np.uint8)
        has_valid = arr.null_count > 0
        valid = arr.is_valid().to_numpy(zero_copy_only=False) if has_valid else np.ones(1, bool)
        first_new = len(self)
        row = 0
        while row < n:
            row = _encode(data, offsets, valid, has_valid, row, self._slots, self._store, self._uoff,
                          self._blank, self._state, codes)
            if row < n:
                self._grow(int(offsets[row + 1] - offsets[row]))
        self._resolve_unicode_blanks(first_new, codes)
        return codes

    def _resolve_unicode_blanks(self, first_new: int, codes: np.ndarray) -> None:
        """Ids made only of whitespace and non-ASCII bytes: decide with Unicode rules (rare)."""
        maybe = np.flatnonzero(self._blank[first_new:len(self)] == _MAYBE) + first_new
        if not len(maybe):
            return
        now_blank = []
        for j in maybe.tolist():
            text = bytes(self._store[self._uoff[j]:self._uoff[j + 1]]).decode("utf-8", "replace")
            self._blank[j] = _BLANK if text.strip() == "" else _REAL
            if self._blank[j] == _BLANK:
                now_blank.append(j)
        if now_blank:
            codes[np.isin(codes, now_blank)] = -1

    def ids(self) -> pa.Array:
        """Every distinct id read (blank ones included) as a string array, in id order."""
        n, nb = len(self), int(self._state[1])
        offsets = self._uoff[:n + 1]
        if nb < 2**31 - 1:
            return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets.astype(np.int32)),
                                                          pa.py_buffer(self._store[:nb].copy())])
        return pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets.copy()),
                                                            pa.py_buffer(self._store[:nb].copy())])
