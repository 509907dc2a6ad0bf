"""graph.idmap.IdTable: one persistent table per id column agrees with pyarrow's dictionary_encode."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from coengage.errors import InputError
from graph.idmap import IdTable


def test_codes_and_ids_equal_dictionary_encode_over_chunks_with_growth():
    rng = np.random.default_rng(0)
    values = [f"id{v}" + "x" * int(v % 13) for v in rng.integers(0, 50_000, 120_000)]
    chunks = [pa.array(values[i:i + 7_000]) for i in range(0, len(values), 7_000)]
    table = IdTable(capacity=16)  # forces many rehashes / buffer growths
    codes = np.concatenate([table.encode(c) for c in chunks])
    ref = pa.chunked_array(chunks).dictionary_encode()
    ref_codes = np.concatenate([c.indices.to_numpy() for c in ref.chunks])
    assert np.array_equal(codes, ref_codes)
    assert table.ids().equals(ref.chunk(ref.num_chunks - 1).dictionary)


def test_null_empty_and_whitespace_ids_get_minus_one():
    table = IdTable()
    codes = table.encode(pa.array(["a", None, "", "  ", "\t", "\u3000", "b", "a", " a"]))
    assert codes.tolist() == [0, -1, -1, -1, -1, -1, table.encode(pa.array(["b"]))[0], 0, codes[-1]]
    assert codes[-1] >= 0 and table.ids().to_pylist()[codes[-1]] == " a"  # not blank: kept as read


def test_sliced_dictionary_large_string_and_integer_inputs():
    table = IdTable()
    arr = pa.array(["x", "y", "z", "y"]).slice(1)
    assert table.encode(arr).tolist() == [0, 1, 0]
    d = pa.array(["z", None, "w", "y"]).dictionary_encode()
    assert table.encode(d).tolist() == [1, -1, 2, 0]
    assert table.encode(pa.array(["w", "q"], pa.large_string())).tolist() == [2, 3]
    assert table.encode(pa.array([7, 8, 7])).tolist() == [4, 5, 4]
    assert table.ids().to_pylist() == ["y", "z", "w", "q", "7", "8"]
    with pytest.raises(InputError, match="floating-point"):
        table.encode(pa.array([1.5]))


def test_utf8_ids_and_long_ids():
    table = IdTable()
    vals = ["é", "e\u0301", "x" * 2_000_000, "é", "x" * 2_000_000]
    codes = table.encode(pa.array(vals))
    assert codes.tolist() == [0, 1, 2, 0, 2]
    assert pc.equal(table.ids(), pa.array(vals[:3])).to_pylist() == [True] * 3


@pytest.mark.parametrize("seed", [0, 1])
def test_dictionary_input_gives_the_codes_and_order_of_plain_strings(seed):
    """Dictionary arrays whose dictionary has unused, out-of-order and blank entries, with
    null indices: same codes and the same id numbering as encoding the decoded strings."""
    rng = np.random.default_rng(seed)
    dictionary = pa.array([f"d{i}" for i in range(300)] + ["", "  ", "d7"])  # a repeated value too
    fast, plain = IdTable(capacity=16), IdTable(capacity=16)
    for _ in range(5):  # several chunks share the table
        idx = rng.integers(-1, len(dictionary), 1000)
        idx = pa.array(np.where(idx < 0, None, idx), pa.int32())
        arr = pa.DictionaryArray.from_arrays(idx, dictionary)
        got = fast.encode(arr)
        ref = plain.encode(arr.cast(pa.string()))
        np.testing.assert_array_equal(got, ref)
    assert fast.ids().equals(plain.ids())
    assert (got == -1).any()


def test_type_column_blanks_follow_the_id_tables_rule():
    """encode_ids (the engagement-type column) and IdTable call the same values blank."""
    from graph.build import encode_ids

    values = ["fav", " ", "\t\n", "", "\u3000", " \u00a0 ", "x\u3000", "\x1c", None, "reply "]
    ids = IdTable(16).encode(pa.array(values))
    codes, dictionary = encode_ids(pa.array(values))
    assert ((ids == -1) == (codes == -1)).all(), (ids, codes)
    assert (codes == -1).sum() == 6  # " ", "\t\n", "", ideographic space, nbsp, None; not "\x1c"
    assert dictionary.to_pylist()[codes[0]] == "fav" and dictionary.to_pylist()[codes[-1]] == "reply "
    # the same through a dictionary-encoded column (how Parquet type columns are read)
    codes_d, _ = encode_ids(pa.array(values).dictionary_encode())
    assert ((codes_d == -1) == (codes == -1)).all()


def test_ids_differing_in_any_single_byte_get_different_codes():
    """Word-at-a-time hashing and comparison: a difference in any byte position, in a full
    8-byte word or in the tail, makes a different id; equal ids map to one code."""
    values = []
    for n in (1, 7, 8, 9, 15, 16, 17, 24, 31):
        base = "a" * n
        values.append(base)
        for pos in range(n):
            values.append(base[:pos] + "b" + base[pos + 1:])
    arr = pa.array(values + values[::-1])  # each id twice
    codes = IdTable(16).encode(arr)  # small table: grows several times on the way
    first, again = codes[:len(values)], codes[len(values):][::-1]
    assert np.array_equal(first, again)
    assert len(np.unique(first)) == len(values) == len(set(values))
    assert np.array_equal(first, np.arange(len(values)))  # numbered by first appearance
