"""The command line as a user types it: output shapes, JSON keys, one-line errors."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import pytest
from rvi_tui.engine import bench
from rvi_tui.engine.errors import EngineError
from rvi_tui.tui.cli import main


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_report_json_has_every_documented_key():
    code, out, _ = run("report", "-w", "random", "--footprint", "4m", "--accesses", "20k", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data["modes"]) == {"native", "shadow", "nested"}
    for mode, m in data["modes"].items():
        for key in ("accesses", "cycles", "cycles_per_access", "walks", "walk_refs", "walk_refs_per_walk",
                    "pwc_hits", "ntlb_hits", "overhead_vs_native", "kvm"):
            assert key in m, (mode, key)
        assert set(m["tlb"]) >= {"l1_hits", "l2_hits", "misses"}
        assert set(m["exits"]) == {"total", "by_reason"}
        assert set(m["exits"]["by_reason"]) >= {"npf", "cr3_write", "invlpg", "pt_write", "shadow_fault",
                                                "guest_pf_inject", "dirty_track"}
        assert m["accesses"] == 20_000
        assert m["tlb"]["misses"] == m["accesses"] - m["tlb"]["l1_hits"] - m["tlb"]["l2_hits"]
    assert data["modes"]["native"]["overhead_vs_native"] is None
    assert data["modes"]["nested"]["exits"]["by_reason"]["npf"] > 0
    assert data["modes"]["native"]["exits"]["total"] == 0


def test_report_single_mode_still_reports_overhead():
    code, out, _ = run("report", "-w", "seq", "--footprint", "1m", "--accesses", "10k", "--mode", "nested", "--json")
    data = json.loads(out)
    assert list(data["modes"]) == ["nested"]
    assert data["modes"]["nested"]["overhead_vs_native"] is not None


def test_report_table_and_trace(tmp_path):
    trace = tmp_path / "t.txt"
    trace.write_text("# a comment\nR 0x7f0000001000\nW 7f0000002008\n0x7f0000001010\n")
    code, out, _ = run("report", "--trace", str(trace), "--levels", "5", "--guest-page", "2m")
    assert code == 0
    assert "cycles / access" in out and "nested" in out and "5-level" in out


def test_report_table_lists_the_nested_walk_caches_only_where_they_were_used():
    args = ("report", "-w", "seq", "--accesses", "5k", "--footprint", "1m")
    code, out, _ = run(*args)
    assert code == 0 and all(f"{cache} hits" in out for cache in ("PWC", "NWC", "NTLB"))
    code, out, _ = run(*args, "--mode", "native")
    assert code == 0 and "PWC hits" in out and "NWC" not in out and "NTLB" not in out


def test_list_workloads_names_the_os_workloads():
    code, out, _ = run("report", "--list-workloads")
    assert code == 0
    for name in ("seq", "random", "stride", "kcompile", "webserver", "tlbstress", "mmapchurn", "real-ls"):
        assert name in out


@pytest.mark.parametrize("argv,needle", [
    (("report", "--set", "tlb.l2.ways=7"), "tlb.l2"),
    (("report", "--set", "nonsense.key=1"), "nonsense.key"),
    (("report", "--set", "pwc.enabled=maybe"), "pwc.enabled"),
    (("report", "--set", "guest.levels=3"), "guest.levels"),
    (("report", "--preset", "pentium"), "pentium"),
    (("report", "-w", "nope"), "nope"),
    (("report", "--trace", "/no/such/file"), "/no/such/file"),
    (("bench", "--modes", "native,bogus"), "bogus"),
    (("bench", "--footprint", "1k"), "--footprint"),
    (("bench", "--model", "fast"), "--model"),
    (("record",), "record needs a command"),
])
def test_user_mistakes_are_one_line_errors(argv, needle):
    code, out, err = run(*argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("rvi-tui: error:") and needle in err
    assert "Traceback" not in err


def test_malformed_trace_line_is_named_by_number(tmp_path):
    trace = tmp_path / "bad.txt"
    trace.write_text("0x1000\n0x2000\nnot-an-address\n")
    code, _, err = run("report", "--trace", str(trace))
    assert code == 2 and ":3:" in err
    code, out, err = run("report", "--trace", str(trace), "--skip-bad-lines", "--json")
    assert code == 0 and json.loads(out)["skipped_lines"] == 1


def test_bench_json_reports_streams_per_mode():
    code, out, _ = run("bench", "--accesses", "30k", "--modes", "native,nested", "--json")
    assert code == 0
    data = json.loads(out)
    for stream in ("random", "seq", "real-ls"):
        for mode in ("native", "nested"):
            assert data["streams"][stream][mode] > 0
        assert data["streams"][stream]["tlb_walk"] > 0 and data["streams"][stream]["tlb_walk_2d"] > 0  # bounds
    faults = data["detail"]["faults"]
    for mode in ("native", "nested"):  # the fault stream: every access the first touch of its page
        assert faults[mode]["faults"] == 30_000 and data["us_per_fault"][mode] > 0
    assert faults["nested"]["exits"] > 0 and faults["native"]["exits"] == 0
    assert data["lackey_parse_lines_per_s"] > 0


def test_bench_repeat_keeps_each_columns_fastest_run():
    code, out, _ = run("bench", "--accesses", "20k", "--modes", "native,nested", "--repeat", "2", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["detail"]["repeat"] == 2
    for name, row in data["detail"]["streams"].items():
        for key in ("tlb_only", "tlb_walk", "tlb_walk_2d", "native", "nested"):
            assert row[key]["accesses_per_s"] > 0 and row[key]["misses"] >= 0, (name, key)
        assert row["native"]["misses"] == row["nested"]["misses"] == row["tlb_walk_2d"]["misses"]


def test_bench_repeat_turns_the_order_of_the_modes_each_round(monkeypatch):
    timed, faulted = [], []
    time_machine, time_faults = bench.time_machine, bench.time_faults
    monkeypatch.setattr(bench, "time_machine", lambda m, *a: timed.append(m.name) or time_machine(m, *a))
    monkeypatch.setattr(bench, "time_faults", lambda mode, *a: faulted.append(mode) or time_faults(mode, *a))
    code, out, _ = run("bench", "--accesses", "2k", "--modes", "native,shadow,nested", "--repeat", "3", "--json")
    assert code == 0
    rounds = [["native", "shadow", "nested"], ["shadow", "nested", "native"], ["nested", "native", "shadow"]]
    assert timed == sum(rounds, []) * 3 and faulted == sum(rounds, [])  # random, seq, real-ls; the fault stream
    columns = [key for key in json.loads(out)["detail"]["streams"]["seq"] if key in rounds[0]]
    assert columns == rounds[0]  # the table keeps the order asked for


def test_bench_table_says_how_near_each_mode_runs_to_its_bare_walker():
    code, out, _ = run("bench", "--accesses", "20k", "--modes", "native,nested")
    assert code == 0 and "bare 2D walk" in out
    line = " ".join(out.split("against the bare walker of their walk: ")[1].split("page faults")[0].split())
    ratios = {m[0]: (float(m[1]), float(m[2])) for m in re.findall(r"([\w-]+) native ([\d.]+)× nested ([\d.]+)×", line)}
    assert set(ratios) == {"random", "seq", "real-ls"} and all(a > 0 and b > 0 for a, b in ratios.values()), line


def test_repeated_runs_that_count_differently_are_a_bug_not_a_figure():
    run_a = {"accesses_per_s": 2.0, "seconds": 1.0, "misses": 5}
    assert bench.fastest([run_a, {**run_a, "accesses_per_s": 3.0}])["accesses_per_s"] == 3.0
    with pytest.raises(EngineError, match="counted differently"):
        bench.fastest([run_a, {**run_a, "misses": 6}])


def test_console_script_runs_headless():
    done = subprocess.run([sys.executable, "-m", "rvi_tui.tui.cli", "report", "--list-workloads"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "kcompile" in done.stdout


def test_bench_leaves_out_the_bare_kernels_for_sets_wider_than_they_model():
    """The bare kernels keep a set's LRU order in one 15-way word: a 24-way L2 gets no bare column, not a crash."""
    code, out, _ = run("bench", "--accesses", "20k", "--modes", "native", "--set", "tlb.l2.ways=24", "--json")
    assert code == 0
    for row in json.loads(out)["streams"].values():
        assert row["native"] > 0 and "tlb_only" not in row and "tlb_walk" not in row
    code, out, _ = run("bench", "--accesses", "20k", "--modes", "native", "--json")
    assert all(row["tlb_only"] > 0 and row["tlb_walk"] > 0 for row in json.loads(out)["streams"].values())


def test_report_compare_runs_twice_and_shows_the_change():
    code, out, _ = run("report", "-w", "random", "--footprint", "8m", "--accesses", "5k", "--json",
                       "--compare", "guest.page=2m", "--compare", "host.page=2m")
    assert code == 0
    data = json.loads(out)
    assert data["guest_page"] == "4k" and data["compare"]["guest_page"] == "2m" and data["compare"]["host_page"] == "2m"
    assert data["compare"]["with"] == {"guest.page": "2m", "host.page": "2m"}
    assert data["compare"]["modes"]["native"]["tlb"]["misses"] < data["modes"]["native"]["tlb"]["misses"]
    code, table, _ = run("report", "-w", "random", "--footprint", "8m", "--accesses", "5k", "--compare",
                         "preset=barcelona-2008")
    assert code == 0 and "with preset=barcelona-2008" in table and "→" in table
    code, _, err = run("report", "-w", "random", "--compare", "tlb.l2.entries=7")
    assert code == 2 and "tlb.l2.entries" in err and len(err.strip().splitlines()) == 1


def test_report_and_the_app_default_to_the_same_workload():
    from rvi_tui.tui.cli import build_parser
    from rvi_tui.tui.runner import RunSpec

    code, out, _ = run("report", "--param", "jobs=2", "--json")
    assert code == 0 and json.loads(out)["workload"] == RunSpec().workload == "kcompile"
    assert build_parser().parse_args([]).workload is None  # the app's default comes from RunSpec too
