"""Input as users feed it: pipes, FIFOs and stdin, bad values, one clear line (exit 2) for every mistake."""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
import threading

import pytest

from rvi_tui.tui.cli import main
from test_cli import run

TRACE = "".join(f"{'W' if i % 3 == 0 else 'R'} {0x10000 + 64 * i:#x}\n" for i in range(3000)).encode()


def report_json(*argv) -> dict:
    code, out, err = run("report", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def reference(tmp_path) -> dict:
    """The report of TRACE read from a regular file."""
    path = tmp_path / "t.txt"
    path.write_bytes(TRACE)
    return report_json("--trace", str(path))["modes"]


def test_a_gzip_trace_through_a_fifo_is_read_once_and_reported(tmp_path, reference):
    """`mkfifo f; zcat t.gz > f & rvi-tui report --trace f` hung for ever: the FIFO was opened once to
    detect the format and again to parse it, and the second open waited for a writer that had gone."""
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(gzip.compress(TRACE)), daemon=True)
    writer.start()
    result = {}
    reader = threading.Thread(target=lambda: result.update(report=report_json("--trace", str(fifo))), daemon=True)
    reader.start()
    reader.join(120)
    assert not reader.is_alive(), "report hung on a FIFO"
    assert result["report"]["modes"] == reference
    assert result["report"]["workload"] == "f"


def test_dash_reads_the_trace_from_stdin(monkeypatch, reference):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(TRACE)))
    report = report_json("--trace", "-")
    assert report["modes"] == reference and report["workload"] == "stdin"


def test_stdin_named_twice_is_one_clear_error():
    code, _, err = run("report", "--trace", "-", "--trace", "-")
    assert code == 2 and err == "rvi-tui: error: --trace -: stdin can be read once, so name it once\n"


@pytest.mark.parametrize("argv", [("--trace", "DIR"), ("report", "--trace", "DIR"), ("bench", "--trace", "DIR")])
def test_a_directory_as_trace_gets_the_same_message_everywhere(tmp_path, argv):
    code, _, err = run(*(str(tmp_path) if a == "DIR" else a for a in argv))
    assert code == 2 and err == f"rvi-tui: error: {tmp_path}: is a directory, not a trace file\n"


@pytest.mark.parametrize("argv", [("--trace", "-"), ("--trace", "FIFO")])
def test_the_app_refuses_a_trace_it_could_not_replay(tmp_path, argv):
    """The app restarts a trace from its start (r, l, w): a pipe or stdin is refused before it starts."""
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    code, _, err = run(*(str(fifo) if a == "FIFO" else a for a in argv))
    assert code == 2 and "a pipe or stdin can be read only once" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv,needle", [
    (("-w", "nosuch"), "unknown workload 'nosuch'"),
    (("-w", "kcompile", "--param", "nosuch=1"), "workload 'kcompile' has no parameter 'nosuch'"),
    (("-w", "kcompile", "--param", "jobs=abc"), "jobs"),
    (("--set", "foo=1"), "unknown config key 'foo'"),
])
def test_the_app_checks_its_workload_before_it_starts(argv, needle):
    """`rvi-tui -w nosuch` opened the app in ERROR, while `--set foo=1` exited 2 before starting: both exit 2."""
    code, _, err = run(*argv)
    assert code == 2 and needle in err and err.count("\n") == 1 and "terminal" not in err


def test_a_warm_up_as_long_as_the_run_is_an_error_not_a_table_of_zeros():
    code, out, err = run("report", "-w", "seq", "--accesses", "10k", "--warmup", "20k")
    assert code == 2 and out == ""
    assert err == ("rvi-tui: error: --warmup 20k: the workload ends after 10,001 ops, within its warm-up of 20,000 "
                   "ops, so nothing is left to count; warm up for fewer ops\n")
    code, out, _ = run("report", "-w", "seq", "--accesses", "10k", "--warmup", "9k", "--json")
    assert code == 0 and json.loads(out)["modes"]["native"]["accesses"] == 1001  # seq's mmap, then 10k accesses


@pytest.mark.parametrize("setting,needle", [
    ("shadow.max_pages=1", "from 64 (KVM_MIN_ALLOC_MMU_PAGES"),
    ("shadow.max_pages=63", "from 64"),
    ("cost.vm_exit=99999999999999999999", "cost.vm_exit = 99999999999999999999: must be a whole number of cycles"),
    ("cost.vm_exit=9223372036854775807", "from 0 to 1,000,000"),
    ("cost.vm_exit=-1", "from 0 to 1,000,000"),
    ("tlb.l2.entries=99999999999999", "from 0 to 1,048,576"),
    ("cache.l3_kib=99999999999", "from 1 to 262,144"),
    ("shadow.flood_threshold=99999999999999999999", "from 1 to 1,000,000"),
])
def test_settings_the_model_cannot_run_are_refused_at_load_time(setting, needle):
    """`shadow.max_pages=1` was accepted and then stopped with "this is a simulator bug"; a huge cost gave a
    traceback (OverflowError) or overflowed silently into a nonsense cycles/access."""
    code, out, err = run("report", "-w", "seq", "--accesses", "2k", "--set", setting)
    assert code == 2 and out == "" and err.count("\n") == 1 and needle in err and "Traceback" not in err


def test_the_least_shadow_page_cap_runs():
    code, out, err = run("report", "-w", "seq", "--accesses", "2k", "--set", "shadow.max_pages=64", "--json")
    assert code == 0, err


def test_bench_with_no_accesses_says_so_not_a_temporary_file():
    code, _, err = run("bench", "--accesses", "0")
    assert code == 2 and err == "rvi-tui: error: --accesses 0: a benchmark needs at least one access\n"


def test_bench_with_no_runs_says_so():
    code, _, err = run("bench", "--repeat", "0")
    assert code == 2 and err == "rvi-tui: error: --repeat 0: must be at least 1\n"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_long_report_shows_progress_on_a_terminal_and_stays_quiet_when_piped():
    out, err = io.StringIO(), Terminal()
    assert main(["report", "-w", "seq", "--accesses", "20k"], out=out, err=err) == 0
    assert "of 20,001 ops" in err.getvalue()  # the end is known: a bar and the time left
    code, _, piped = run("report", "-w", "seq", "--accesses", "20k")
    assert code == 0 and piped == ""


def test_a_piped_report_does_not_count_an_os_workload(monkeypatch):
    """Counting kcompile's ops generates its whole stream a second time: only a progress bar (on a terminal) asks
    for the count, and it is counted elsewhere (test_op_count.py)."""
    from rvi_tui.workloads.count import OpCount

    started = []
    monkeypatch.setattr(OpCount, "start", lambda self: started.append(self.workload.name))
    assert main(["report", "-w", "kcompile", "--param", "jobs=1"], out=io.StringIO(), err=io.StringIO()) == 0
    assert started == []
    assert main(["report", "-w", "kcompile", "--param", "jobs=1"], out=io.StringIO(), err=Terminal()) == 0
    assert started and set(started) == {"kcompile"}


def test_percentages_never_read_minus_zero():
    from rvi_tui.tui import fmt, render

    assert render._pct(-1e-6) == "+0.0%" and fmt.signed_percent(-1e-6) == "+0.0%"
    assert render._pct(-0.0012) == "-0.1%" and fmt.signed_percent(-2.5) == "-250%"


def test_nested_vs_shadow_has_the_sign_of_the_overheads_beside_it():
    """It was shadow/nested - 1, so + meant nested wins: the opposite of the overhead columns beside it."""
    from rvi_tui.tui.render import study_table

    def cell(mode, cycles):
        return {"workload": "w", "mode": mode, "guest.page": "4k", "host.page": "4k", "cycles": cycles,
                "cycles_per_access": cycles / 10, "overhead_vs_native": cycles / 100 - 1, "tlb.miss_rate": 0.1,
                "walk_refs_per_walk": 1.0}

    results = [{"rows": [cell("native", 100), cell("shadow", 300), cell("nested", 150)], "command": "x",
                "error": None}]
    table = study_table(results, ("pages",))
    row = [list(column.cells)[0] for column in table.columns]
    assert row[5] == "-50.0%"  # nested needs half shadow's cycles: nested/shadow - 1
    assert "nested vs shadow = nested/shadow − 1" in table.title and "+ = more cycles" in table.title


def test_show_config_gives_each_value_its_source_and_json_when_asked():
    code, out, _ = run("report", "--show-config", "--set", "cost.vm_exit=2000")
    assert code == 0
    vm_exit = next(line for line in out.splitlines() if line.split()[:1] == ["cost.vm_exit"])
    assert "2000" in vm_exit and "set by --set" in vm_exit
    assert "lkml 2012.2/00527]" in run("report", "--show-config")[1]
    code, out, _ = run("report", "--show-config", "--json", "--guest-page", "2m")
    data = json.loads(out)  # it printed a table
    assert data["values"]["guest.page"] == "2m" and data["sources"]["guest.page"] == "set by --guest-page"
    assert data["sources"]["cost.vm_exit"].endswith("[V: lkml 2012.2/00527]")
    assert set(data["sources"]) == set(data["values"])
