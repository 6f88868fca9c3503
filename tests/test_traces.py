"""Trace parsers: lackey, plain text and npy; gzip; detection; bad input; skipping."""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rvi_tui.workloads import ops
from rvi_tui.workloads.parse_bench import lackey_parse_rate, write_lackey_sample
from rvi_tui.workloads.registry import TraceError, make_workload, open_trace, save_ops

LACKEY = b"""==4242== Lackey, an example Valgrind tool
==4242== Command: ./a.out
I  04010a0,3
 L 7ff000ff0,8
 L 0000ffc,8
 S 1ffefffe48,8
 M 0421f38,4
 M 0001ffe,4
I  0001ffe,4
 S 0fff,1
==4242==
==4242== Exit code:       0
"""
R, W, X = ops.READ, ops.WRITE, ops.FETCH
LACKEY_OPS = [(R, 0x7FF000FF0), (R, 0xFFC), (R, 0x1000), (W, 0x1FFEFFFE48), (R, 0x421F38), (W, 0x421F38),
              (R, 0x1FFE), (R, 0x2000), (W, 0x1FFE), (W, 0x2000), (W, 0xFFF)]
LACKEY_OPS_IFETCH = [(X, 0x4010A0)] + LACKEY_OPS[:10] + [(X, 0x1FFE), (X, 0x2000)] + LACKEY_OPS[10:]

TEXT = b"""# a plain trace
0x7ffd1234
7ffd1238
W 0x7ffd1240   # a store

  r 0X10
X 400000
w ABCDEF
"""
TEXT_OPS = [(R, 0x7FFD1234), (R, 0x7FFD1238), (W, 0x7FFD1240), (R, 0x10), (W, 0xABCDEF)]


def write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def pairs(workload, chunk_ops=1 << 16):
    a = np.concatenate(list(workload.chunks(chunk_ops)))
    assert (a["kind"] == ops.ACCESS).all()
    return [(int(r), int(x)) for r, x in zip(a["rw"], a["addr"])]


def trace_error(path, **kw) -> str:
    """The message of the TraceError opening and reading ``path`` raises."""
    with pytest.raises(TraceError) as info:
        w = open_trace(path, **kw)
        for _ in w.chunks():
            pass
    message = str(info.value)
    assert "\n" not in message
    return message


# --- good input ---------------------------------------------------------------------------------

def test_lackey_sample(tmp_path):
    p = write(tmp_path, "t.out", LACKEY)
    w = open_trace(p)
    assert w.fmt == "lackey"
    assert pairs(w) == LACKEY_OPS
    assert (w.lines_read, w.skipped_lines, w.n_ops) == (12, 0, len(LACKEY_OPS))
    assert pairs(open_trace(p, ifetch=True)) == LACKEY_OPS_IFETCH
    # every chunk size gives the same stream, even one op per chunk through a 4-op modify
    for chunk_ops in (1, 2, 3, 5):
        assert pairs(open_trace(p, ifetch=True), chunk_ops) == LACKEY_OPS_IFETCH


def test_lackey_tolerates_crlf_and_no_final_newline(tmp_path):
    data = LACKEY.replace(b"\n", b"\r\n").rstrip(b"\r\n").rsplit(b"\r\n", 2)[0]
    p = write(tmp_path, "crlf", data)
    assert pairs(open_trace(p)) == LACKEY_OPS


def test_pid_is_applied(tmp_path):
    w = open_trace(write(tmp_path, "t", LACKEY), pid=7)
    assert (np.concatenate(list(w.chunks()))["pid"] == 7).all()


def test_text_sample(tmp_path):
    p = write(tmp_path, "t.trace", TEXT)
    w = open_trace(p)
    assert w.fmt == "text"
    assert pairs(w) == TEXT_OPS
    assert w.lines_read == 8
    assert pairs(open_trace(p, ifetch=True)) == TEXT_OPS[:3] + [(R, 0x10), (X, 0x400000), (W, 0xABCDEF)]


@pytest.mark.parametrize("levels", [4, 5])
def test_upper_half_addresses_are_refused_as_kernel_addresses_with_their_line(tmp_path, levels):
    """The model's guest runs user processes only: an upper-half (kernel) address is refused at parse time,
    with its line and that reason (it once reached the engine as a negative number with a wrong hint)."""
    p = write(tmp_path, "t", b"0x1000\n0xffff800000001000\n")
    message = trace_error(p, levels=levels)
    assert message.startswith(f"{p}:2: upper-half (kernel) address: the model's guest runs user processes only")
    assert "-0x" not in message and "--levels 5" not in message
    if levels == 5:
        assert trace_error(write(tmp_path, "t5", b"0xff00000000001000\n"), levels=5).startswith(
            f"{tmp_path / 't5'}:1: upper-half (kernel) address")
    w = open_trace(p, levels=levels, skip_bad_lines=True)
    assert pairs(w) == [(R, 0x1000)] and w.skipped_lines == 1


def test_an_address_beyond_4_level_paging_is_refused_not_aliased(tmp_path):
    """0x0001000000001000 is no 4-level address: refused with its line (the TLB once aliased it to 0x1000);
    with 5 levels it is a user address like any other."""
    p = write(tmp_path, "t", b"0x1000\n0x0001000000001000\n")
    assert trace_error(p) == (f"{p}:2: address above the 47-bit user range of 4-level paging (--levels 5 gives "
                              "56 bits): '0x0001000000001000'")
    assert pairs(open_trace(p, levels=5)) == [(R, 0x1000), (R, 0x0001000000001000)]
    lackey = write(tmp_path, "l", b" L 0001000000001000,8\n")
    assert trace_error(lackey).startswith(f"{lackey}:1: address above the 47-bit user range of 4-level paging")
    npy = tmp_path / "o.npy"
    save_ops(npy, ops.accesses(np.array([0x1000, 0x0001000000001000], dtype=np.uint64)))
    assert trace_error(npy).startswith(f"{npy}: op 1: address above the 47-bit user range of 4-level paging")
    assert len(pairs(open_trace(npy, levels=5))) == 2


@pytest.mark.parametrize("data,ops_", [(LACKEY, LACKEY_OPS), (TEXT, TEXT_OPS)])
def test_gzip_detected_by_magic(tmp_path, data, ops_):
    p = write(tmp_path, "misleading.txt", gzip.compress(data))
    assert pairs(open_trace(p)) == ops_
    # concatenated gzip members read as one stream
    p = write(tmp_path, "two.gz", gzip.compress(data[:50]) + gzip.compress(data[50:]))
    assert pairs(open_trace(p)) == ops_


def test_format_override(tmp_path):
    p = write(tmp_path, "t", TEXT)
    with pytest.raises(TraceError, match=r":1: malformed lackey line: '# a plain trace'"):
        for _ in open_trace(p, fmt="lackey").chunks():
            pass
    with pytest.raises(ValueError):
        open_trace(p, fmt="pcap")


def test_npy_round_trip(tmp_path):
    w = make_workload("kcompile", jobs=3)
    p = tmp_path / "k.npy"
    n = save_ops(p, w)
    assert n == w.n_ops
    assert os.listdir(tmp_path) == ["k.npy"]  # no temporary file left behind
    expect = np.concatenate(list(w.chunks()))
    assert np.array_equal(np.load(p, allow_pickle=False), expect)
    t = open_trace(p)
    assert t.fmt == "npy" and t.n_ops == len(expect)
    got = list(t.chunks(1000))
    assert all(len(c) == 1000 for c in got[:-1])
    assert np.array_equal(np.concatenate(got), expect)
    assert save_ops(tmp_path / "a.npy", expect[:10]) == 10
    assert save_ops(tmp_path / "b.npy", iter([expect[:3], expect[3:5]])) == 5


def test_npy_bad(tmp_path):
    p = tmp_path / "f.npy"
    np.save(p, np.zeros(4, dtype=np.float64))
    assert "not an op file" in trace_error(p)
    good = ops.accesses(np.arange(5) * 4096)
    good[3]["kind"] = 9
    save_ops(p, good)
    assert trace_error(p).endswith(f"{p}: op 3: not a valid op (kind 9, rw 0, flags 0, addr 0x3000)")
    w = open_trace(p, skip_bad_lines=True)
    assert len(np.concatenate(list(w.chunks()))) == 4 and w.skipped_lines == 1
    save_ops(p, ops.empty(0))
    assert trace_error(p) == f"{p}: no ops"
    save_ops(p, good[:4])
    data = p.read_bytes()
    cut = write(tmp_path, "cut.npy", data[:-10])
    assert trace_error(cut) == f"{cut}: op file cut short: 3 of its 4 ops are there"
    assert "not a .npy op file (it does not start as a .npy file does)" in trace_error(write(tmp_path, "t", TEXT),
                                                                                        fmt="npy")
    assert "allow_pickle" not in trace_error(write(tmp_path, "t", TEXT), fmt="npy")


def test_a_gzip_compressed_op_file_replays(tmp_path):
    expect = ops.accesses(np.arange(1, 2001, dtype=np.uint64) * 4096)
    save_ops(tmp_path / "o.npy", expect)
    gz = write(tmp_path, "o.npy.gz", gzip.compress((tmp_path / "o.npy").read_bytes()))
    t = open_trace(gz)
    assert t.fmt == "npy" and t.n_ops == 2000
    assert np.array_equal(np.concatenate(list(t.chunks(300))), expect)


# --- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("line,reason", [
    (b" L 10zz,8", "malformed lackey line: ' L 10zz,8'"),
    (b" Q 1000,8", "malformed lackey line"),
    (b" L 1000", "malformed lackey line"),
    (b" L 1000,", "malformed lackey line"),
    (b" L ,8", "malformed lackey line"),
    (b" L 1000,8 extra", "malformed lackey line"),
    (b" L 11112222333344445,8", "address wider than 64 bits"),
    (b" L 0200000000000000,8", "non-canonical address for 4-level paging (bits 47-63 must all equal bit 47)"),
    (b" L 0100000000000000,8", "non-canonical address"),
    (b" L fe00000000000000,8", "non-canonical address"),
    (b" L ffff800000000000,8", "upper-half (kernel) address"),
    (b" L 00007ffffffffffc,8", "access runs past the end of the user address range"),
    (b" L 00007fffffffffff,2", "access runs past the end of the user address range"),
    (b" L 1000,12345678901", "bad access size"),
    (b"\x00\x01\x02binary", "malformed lackey line: 9 bytes of binary data, not text"),
])
def test_lackey_bad_line_reports_its_number(tmp_path, line, reason):
    p = write(tmp_path, "bad", LACKEY + line + b"\n L 1000,8\n")
    assert trace_error(p).startswith(f"{p}:13: {reason}")


@pytest.mark.parametrize("line,reason", [
    (b"0xzz", "malformed text line: '0xzz'"),
    (b"0x", "malformed text line"),
    (b"W", "malformed text line"),
    (b"W0x1000", "malformed text line"),
    (b"0x1000 0x2000", "malformed text line"),
    (b"0x11112222333344445", "address wider than 64 bits"),
    (b"0x0200000000000000", "non-canonical address for 4-level paging"),
    (b"0x00ff800000000000 0", "malformed text line"),
    (b"0x0180000000000000", "non-canonical address"),
])
def test_text_bad_line_reports_its_number(tmp_path, line, reason):
    p = write(tmp_path, "bad", TEXT + line + b"\n0x10\n")
    assert trace_error(p).startswith(f"{p}:9: {reason}")


def test_bad_line_far_into_a_large_file(tmp_path):
    """Line numbers stay exact across block boundaries (blocks are 4 MiB) and through gzip."""
    n = 400_000
    body = b"".join(b" L %08x,8\n" % (0x10000 + 8 * i) for i in range(n))
    data = body + b" L nothex,8\n"
    p = write(tmp_path, "big", data)
    assert trace_error(p).startswith(f"{p}:{n + 1}: malformed lackey line")
    g = write(tmp_path, "big.gz", gzip.compress(data, 1))
    assert trace_error(g).startswith(f"{g}:{n + 1}: malformed lackey line")
    w = open_trace(p, skip_bad_lines=True)
    assert sum(len(c) for c in w.chunks()) == n
    assert (w.lines_read, w.skipped_lines) == (n + 1, 1)


def test_truncated_gzip(tmp_path):
    data = b"".join(b" S %08x,4\n" % (0x5000 + 4 * i) for i in range(50_000))
    packed = gzip.compress(data)
    cut = packed[: len(packed) // 2]
    readable = zlib.decompressobj(31).decompress(cut)  # what any reader can get out of the cut stream
    line = readable.count(b"\n") + 1
    p = write(tmp_path, "cut.gz", cut)
    assert trace_error(p) == f"{p}:{line}: gzip stream is truncated"
    assert "truncated" in trace_error(write(tmp_path, "tiny.gz", packed[:12]))


def test_corrupt_gzip(tmp_path):
    packed = bytearray(gzip.compress(LACKEY * 50))
    packed[len(packed) // 2] ^= 0xFF
    assert "corrupt gzip data" in trace_error(write(tmp_path, "bad.gz", bytes(packed)))


@pytest.mark.parametrize("data", [b"", b"\n\n", b"# nothing\n", b"==12== only a banner\n"])
def test_no_accesses(tmp_path, data):
    p = write(tmp_path, "empty", data)
    assert trace_error(p) == f"{p}: no accesses"
    assert trace_error(p, skip_bad_lines=True) == f"{p}: no accesses"
    assert trace_error(write(tmp_path, "empty.gz", gzip.compress(data))).endswith(": no accesses")


def test_fetch_only_lackey_without_ifetch_has_no_accesses_and_says_why(tmp_path):
    p = write(tmp_path, "f", b"I  0401000,3\nI  0401003,2\n")
    assert trace_error(p) == f"{p}: no accesses (2 instruction fetches, replayed only with --ifetch)"
    assert len(pairs(open_trace(p, ifetch=True))) == 2
    t = write(tmp_path, "x", b"X 0x401000\n")
    assert trace_error(t) == f"{t}: no accesses (1 instruction fetches, replayed only with --ifetch)"


def test_garbage(tmp_path):
    p = write(tmp_path, "junk", b"hello world\n\x7fELF\x02\x01\x01\x00\n")
    assert trace_error(p) == f"{p}:1: not a lackey, text or npy trace: 'hello world'"
    assert trace_error(p, skip_bad_lines=True).startswith(f"{p}:1: not a lackey, text or npy trace")
    assert trace_error(p, fmt="text") == f"{p}:1: malformed text line: 'hello world'"
    assert trace_error(p, fmt="text", skip_bad_lines=True) == f"{p}: no accesses (2 bad lines skipped)"
    long = write(tmp_path, "long", b"x" * 200_000)
    assert trace_error(long).startswith(f"{long}:1: line longer than")
    assert trace_error(tmp_path / "missing") == f"{tmp_path / 'missing'}: no such file"
    assert trace_error(tmp_path) == f"{tmp_path}: is a directory, not a trace file"


def test_skip_bad_lines_counts(tmp_path):
    data = LACKEY + b" L zz,8\n\x00\x00\n L 0200000000000000,8\n L 2000,4\n" + b"y" * 100_000 + b"\n L 3000,4\n"
    p = write(tmp_path, "mixed", data)
    w = open_trace(p, skip_bad_lines=True)
    assert pairs(w) == LACKEY_OPS + [(R, 0x2000), (R, 0x3000)]
    assert (w.skipped_lines, w.lines_read) == (4, 18)
    assert trace_error(p).startswith(f"{p}:13: malformed lackey line")


# --- arbitrary bytes ----------------------------------------------------------------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(
    st.binary(max_size=400),
    st.lists(st.sampled_from([b" L 1000,8\n", b"I  04,3\n", b"0x10\n", b"W 7f\n", b"==1==\n", b"\n", b"#c\n",
                              b" M fff,4\n", b",", b"0x", b"\x00", b"\x93NUMPY", b"\x1f\x8b", b" L ", b"\r"]))
    .map(b"".join),
), gz=st.sampled_from(["plain", "gzip", "cut-gzip"]), fmt=st.sampled_from([None, "lackey", "text", "npy"]),
   skip=st.booleans())
def test_arbitrary_bytes_raise_only_trace_errors(tmp_path, data, gz, fmt, skip):
    if gz == "gzip":
        data = gzip.compress(data)
    elif gz == "cut-gzip":
        data = gzip.compress(data)[: max(1, len(data) // 2)]
    p = write(tmp_path, "fuzz", data)
    try:
        w = open_trace(p, fmt, skip_bad_lines=skip, ifetch=True)
        for chunk in w.chunks(3):
            assert chunk.dtype == ops.OP_DTYPE and 0 < len(chunk) <= 3
    except TraceError as e:
        assert "\n" not in str(e) and str(e).startswith(str(p))


# --- the shipped trace and the benchmark hook -----------------------------------------------------

def test_real_ls_builtin():
    w = make_workload("real-ls")
    a = np.concatenate(list(w.chunks()))
    assert len(a) > 100_000 and (a["kind"] == ops.ACCESS).all()
    assert set(np.unique(a["rw"])) == {R, W}
    assert w.n_ops == len(a) and w.skipped_lines == 0
    with_fetches = make_workload("real-ls", ifetch=True)
    assert sum(len(c) for c in with_fetches.chunks()) > 2 * len(a)
    head = make_workload("real-ls", accesses=1000)
    assert np.array_equal(np.concatenate(list(head.chunks(300))), a[:1000])
    assert head.n_ops == 1000


def test_lackey_parse_rate(tmp_path):
    p = tmp_path / "bench.lackey"
    assert write_lackey_sample(p, 300_000) == 300_000
    lines, seconds = lackey_parse_rate(p)
    assert lines == 300_000 and seconds > 0
    assert lines / seconds > 1e6  # the real rate is well over 10 M lines/s; this only catches a per-line Python loop
    trace = open_trace(p, ifetch=True)
    assert trace.fmt == "lackey" and sum(len(c) for c in trace.chunks()) >= 300_000
