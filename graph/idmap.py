"""String id -> integer id with one persistent hash table per id column (no per-chunk unify).

:class:`IdTable` reads the Arrow buffers of a string column (offsets + UTF-8 bytes) in a
Numba kernel that hashes each row once and probes one open-addressing table that lives for
the whole build, so ids are numbered in order of first appearance without a second pass
over per-chunk dictionaries. The kernel releases the GIL: the user and tweet columns are
encoded on two threads at once.

Memory layout, chosen so a row costs about one cache miss that is already in flight when the
row is reached:

* a slot is two int64 words, ``[hash | 1, offset << 26 | flag << 24 | length]`` (0 = empty);
  the full 64-bit hash is compared before any byte, so a probe touches one cache line;
* the distinct ids live in one byte store as records ``[id: 4 bytes][UTF-8 bytes]``: the
  byte comparison and the id come from the same cache line;
* the kernel hashes row ``r + 16`` and prefetches its slot, and prefetches the stored bytes
  of row ``r + 8`` (whose slot has arrived by then), while it resolves row ``r``.

Dictionary-encoded input (:class:`pyarrow.DictionaryArray`, e.g. Parquet read with
``read_dictionary``) is cheaper: only the dictionary entries the chunk uses are hashed, in
order of their first use, and the rows take their codes through a small gather; the codes
and the id order are exactly those of the plain path.

Null, empty and whitespace-only ids get code -1. The distinct ids come back as a ``pyarrow``
string array (:meth:`IdTable.ids`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from coengage.errors import InputError

_AHEAD = 16  # rows hashed ahead: their slot is prefetched
_AHEAD2 = 8  # rows ahead whose stored bytes are prefetched
_RING = 32  # ring of hashes (power of two > _AHEAD)
_LEN_MAX = np.int64((1 << 24) - 1)  # longer ids keep their length in uoff only
_OFF_SHIFT = np.int64(26)
_FLAG_BIT = np.int64(1 << 24)  # the id is blank or may be (look at ``blank``)
_REAL, _BLANK, _MAYBE = 0, 1, 2  # blank flag of a distinct id (_MAYBE: whitespace + non-ASCII bytes)


def _is_vector_index(arr, idx) -> bool:
    return isinstance(arr, types.Array) and arr.ndim == 1 and isinstance(idx, types.Integer)


def _element_pointer(context, builder, signature, args):
    """LLVM pointer to ``arr[idx]`` for an intrinsic called as ``f(arr, idx)`` (no wraparound)."""
    aryty, idxty = signature.args
    ary = context.make_array(aryty)(context, builder, args[0])
    i = context.cast(builder, args[1], idxty, types.intp)
    return cgutils.get_item_pointer(context, builder, aryty, ary, [i], wraparound=False)


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Hint the CPU to load ``arr[idx]`` into the cache (llvm.prefetch; no effect on results)."""
    if not _is_vector_index(arr, idx):
        return None

    def codegen(context, builder, signature, args):
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            "llvm.prefetch.p0i8")
        ptr = _element_pointer(context, builder, signature, args)
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


@intrinsic
def _load_u64(typingctx, arr, idx):
    """The 8 bytes ``arr[idx:idx+8]`` of a uint8 array as one unaligned load in the machine's byte
    order (hashes only need to agree within a process); the caller keeps ``idx + 8 <= len(arr)``."""
    if not _is_vector_index(arr, idx):
        return None

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature, args)
        return builder.load(builder.bitcast(ptr, ir.IntType(64).as_pointer()), align=1)

    return types.uint64(arr, idx), codegen


@njit(nogil=True, cache=True, inline="always")
def _same_bytes(x, p, y, a, n):
    """``x[p:p+n] == y[a:a+n]``, 8 bytes at a time."""
    k = 0
    while k + 8 <= n:
        if _load_u64(x, p + k) != _load_u64(y, a + k):
            return False
        k += 8
    while k < n:
        if x[p + k] != y[a + k]:
            return False
        k += 1
    return True


@njit(nogil=True, cache=True, inline="always")
def _mix(h):
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


@njit(nogil=True, cache=True, inline="always")
def _home(h, mask):
    """A hash's first slot: bits 1 and up (bit 0 is always set, see :func:`_hash`)."""
    return (h >> np.int64(1)) & mask


@njit(nogil=True, cache=True)
def _hash(data, a, b):
    """64-bit hash of ``data[a:b]``, 8 bytes at a time; never 0 (0 marks an empty slot)."""
    h = np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(b - a)
    i = a
    while i + 8 <= b:
        h = _mix(h ^ _load_u64(data, i))
        i += 8
    if i < b:
        w = np.uint64(0)
        for k in range(b - i):
            w |= np.uint64(data[i + k]) << np.uint64(8 * k)
        h = _mix(h ^ w ^ np.uint64(0xA5A5A5A5))
    return np.int64(h | np.uint64(1))


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


@njit(nogil=True, cache=True, inline="always")
def _record_id(store, p):
    """The id stored in the 4 bytes before ``store[p]``."""
    return (np.int64(store[p - 4]) | (np.int64(store[p - 3]) << 8) | (np.int64(store[p - 2]) << 16)
            | (np.int64(store[p - 1]) << 24))


@njit(nogil=True, cache=True)
def _encode(data, offsets, valid, has_valid, start, slots, store, uoff, blank, state, codes):
    """Codes of rows ``start..`` of one string column chunk; returns the next row to do.

    Stops early (returning that row) when the table would pass half full or the id buffers
    are full; the caller grows them and calls again. ``state`` is ``[n_distinct, n_bytes]``.
    """
    nslots = len(slots) // 2
    mask = np.int64(nslots - 1)
    n_ids = state[0]
    n_bytes = state[1]
    limit = nslots // 2
    n = len(offsets) - 1
    ring = np.empty(_RING, np.int64)
    rmask = _RING - 1
    for q in range(start, min(start + _AHEAD, n)):
        h = _hash(data, offsets[q], offsets[q + 1])
        ring[q & rmask] = h
        _prefetch(slots, 2 * _home(h, mask))
    for r in range(start, n):
        q = r + _AHEAD
        if q < n:
            h = _hash(data, offsets[q], offsets[q + 1])
            ring[q & rmask] = h
            _prefetch(slots, 2 * _home(h, mask))
        q = r + _AHEAD2
        if q < n:
            h = ring[q & rmask]
            i = _home(h, mask)
            if slots[2 * i] == h:
                _prefetch(store, slots[2 * i + 1] >> _OFF_SHIFT)
        if has_valid and not valid[r]:
            codes[r] = -1
            continue
        a = offsets[r]
        b = offsets[r + 1]
        length = b - a
        h = ring[r & rmask]
        i = _home(h, mask)
        while True:
            s = slots[2 * i]
            if s == 0:  # a new id
                if n_ids >= limit or n_ids + 1 >= len(uoff) or n_bytes + 4 + length > len(store):
                    state[0] = n_ids
                    state[1] = n_bytes
                    return r
                for k in range(4):
                    store[n_bytes + k] = (n_ids >> (8 * k)) & 0xFF
                p = n_bytes + 4
                for k in range(length):
                    store[p + k] = data[a + k]
                uoff[n_ids] = n_bytes
                uoff[n_ids + 1] = p + length
                fl = _blank_flag(data, a, b)
                blank[n_ids] = fl
                slots[2 * i] = h
                slots[2 * i + 1] = (p << _OFF_SHIFT) | (_FLAG_BIT if fl != 0 else 0) | min(length, _LEN_MAX)
                n_bytes = p + length
                codes[r] = -1 if fl == 1 else n_ids
                n_ids += 1
                break
            if s == h:
                w = slots[2 * i + 1]
                p = w >> _OFF_SHIFT
                m = w & _LEN_MAX
                j = _record_id(store, p)
                if m == _LEN_MAX:
                    m = uoff[j + 1] - p
                if m == length:
                    if _same_bytes(store, p, data, a, length):
                        codes[r] = -1 if (w & _FLAG_BIT) != 0 and blank[j] == 1 else j
                        break
            i = (i + 1) & mask
    state[0] = n_ids
    state[1] = n_bytes
    return n


@njit(nogil=True, cache=True)
def _rehash(old, slots):
    """Move every entry of the slot array ``old`` into the larger, empty ``slots``.

    A slot keeps its full hash, so nothing is re-hashed and the id bytes are not read: the old
    array is scanned in order and each entry's new home is prefetched ``_AHEAD`` entries early.
    """
    mask = np.int64(len(slots) // 2 - 1)
    n_old = len(old) // 2
    for s in range(n_old + _AHEAD):
        if s < n_old and old[2 * s] != 0:
            _prefetch(slots, 2 * _home(old[2 * s], mask))
        r = s - _AHEAD
        if r >= 0 and old[2 * r] != 0:
            h = old[2 * r]
            i = _home(h, mask)
            while slots[2 * i] != 0:
                i = (i + 1) & mask
            slots[2 * i] = h
            slots[2 * i + 1] = old[2 * r + 1]


@njit(nogil=True, cache=True)
def _compact_store(store, uoff, n_ids, out, out_off):
    """Copy the ids' bytes without their 4-byte id prefixes (for :meth:`IdTable.ids`)."""
    o = 0
    for j in range(n_ids):
        out_off[j] = o
        for k in range(uoff[j] + 4, uoff[j + 1]):
            out[o] = store[k]
            o += 1
    out_off[n_ids] = o


@njit(nogil=True, cache=True)
def _first_use(indices, n_dict):
    """Dictionary entries in order of first use by ``indices`` (-1 = null, skipped)."""
    seen = np.zeros(n_dict, np.bool_)
    order = np.empty(n_dict, np.int64)
    k = 0
    for i in range(len(indices)):
        c = indices[i]
        if c >= 0 and not seen[c]:
            seen[c] = True
            order[k] = c
            k += 1
    return order[:k]


@njit(nogil=True, cache=True)
def _gather_codes(indices, lut, codes):
    for i in range(len(indices)):
        c = indices[i]
        codes[i] = -1 if c < 0 else lut[c]


def is_blank_id(value: str | None) -> bool:
    """Null, empty or whitespace-only: ASCII space and \\t\\n\\v\\f\\r (what :func:`_blank_flag`
    tests byte by byte), and Unicode whitespace (``str.strip``) in ids with non-ASCII characters."""
    if value is None:
        return True
    return (value.strip(" \t\n\v\f\r") if value.isascii() else value.strip()) == ""


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


def _zeroed_slots(n: int) -> np.ndarray:
    """A zeroed int64 hash table, its pages touched by writing.

    ``np.zeros`` leaves fresh pages unmapped; the probes' first access is then a read, which
    maps the shared zero page, and the first insert into each page takes a second,
    copy-on-write fault with a TLB flush across threads (~0.2 s of a 10M-row build on this
    2-core VM). Writing the zeros first makes it one fault per (huge) page.
    """
    slots = np.empty(n, np.int64)
    slots.fill(0)
    return slots


class IdTable:
    """Distinct string ids of one column, numbered in order of first appearance.

    ``encode(array)`` returns int32 codes (-1 for null, empty or whitespace-only ids). Not
    thread-safe: one thread per table at a time (different tables may run concurrently).
    """

    def __init__(self, capacity: int = 1 << 16):
        cap = 1 << max(4, int(capacity - 1).bit_length())
        self._slots = _zeroed_slots(4 * cap)  # 2 * cap slots of 2 words
        self._uoff = np.zeros(cap + 1, np.int64)
        self._blank = np.zeros(cap, np.int8)
        self._store = np.empty(cap * 20, np.uint8)
        self._state = np.zeros(2, np.int64)

    def __len__(self) -> int:
        return int(self._state[0])

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self._slots, self._uoff, self._blank, self._store))

    def _grow(self, need_bytes: int) -> None:
        n_ids, n_bytes = int(self._state[0]), int(self._state[1])
        if n_ids >= len(self._slots) // 4 or n_ids + 1 >= len(self._uoff):
            cap = 2 * len(self._blank)
            self._uoff = np.resize(self._uoff, cap + 1)
            self._blank = np.resize(self._blank, cap)
            old, self._slots = self._slots, _zeroed_slots(2 * len(self._slots))
            _rehash(old, self._slots)
            del old
        if n_bytes + need_bytes + 4 > len(self._store):
            self._store = np.resize(self._store, max(2 * len(self._store), n_bytes + need_bytes + 4))

    def encode(self, arr) -> np.ndarray:
        if isinstance(arr, pa.ChunkedArray):
            parts = [self.encode(c) for c in arr.chunks]
            return np.concatenate(parts) if parts else np.zeros(0, np.int32)
        if pa.types.is_dictionary(arr.type):
            return self._encode_dictionary(arr)
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

    def _encode_dictionary(self, arr: pa.DictionaryArray) -> np.ndarray:
        """Hash only the dictionary entries used, in order of first use; gather the row codes.

        Gives exactly the codes (and id order) of encoding the decoded strings row by row:
        the ids new to the table are numbered in the order the rows first use them.
        """
        idx = arr.indices
        if idx.null_count:
            idx = pc.fill_null(idx, -1)
        idx = idx.to_numpy(zero_copy_only=False)
        dictionary = arr.dictionary
        order = _first_use(idx, len(dictionary))
        lut = np.full(len(dictionary), -1, np.int32)
        if len(order):
            used = dictionary if len(order) == len(dictionary) and np.array_equal(order, np.arange(len(order))) \
                else dictionary.take(pa.array(order))
            lut[order] = self.encode(used)
        codes = np.empty(len(idx), np.int32)
        _gather_codes(idx, lut, codes)
        return codes

    def _resolve_unicode_blanks(self, first_new: int, codes: np.ndarray) -> None:
        """Ids made only of whitespace and non-ASCII bytes: decide with Unicode rules (rare)."""
        maybe = np.flatnonzero(self._blank[first_new:len(self)] == _MAYBE) + first_new
        if not len(maybe):
            return
        now_blank = []
        for j in maybe.tolist():
            text = bytes(self._store[self._uoff[j] + 4:self._uoff[j + 1]]).decode("utf-8", "replace")
            self._blank[j] = _BLANK if is_blank_id(text) else _REAL
            if self._blank[j] == _BLANK:
                now_blank.append(j)
        if now_blank:
            codes[np.isin(codes, now_blank)] = -1

    def ids(self) -> pa.Array:
        """Every distinct id read (blank ones included) as a string array, in id order."""
        n, nb = len(self), int(self._state[1])
        data = np.empty(max(nb - 4 * n, 1), np.uint8)
        offsets = np.empty(n + 1, np.int64)
        _compact_store(self._store, self._uoff, n, data, offsets)
        if offsets[-1] < 2**31 - 1:
            return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets.astype(np.int32)),
                                                          pa.py_buffer(data)])
        return pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
