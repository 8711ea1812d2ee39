"""The benchmark harness itself (lightning_core.bench), on tiny synthetic cases: timing helper, ratio and
summary arithmetic, the repeat aggregation (stability gate), CSV/JSON schema, the Markdown report, the
PNG writer, the progress line and the CLI end to end on a fake suite. Nothing here times a real kernel."""
import io
import json
import math
import os
import struct
import time
import zlib

import pytest

from lightning_core.bench import charts, cli, harness as H, report, suites
from lightning_core.bench.progress import Progress


def row(case="c", ours=1.0, peer_ms=2.0, mode="one_shot", peer="numpy", family="f", suite="s", **kw):
    return H.make_row(suite, family, case, mode, ours, peer, peer_ms, **kw)


def test_stats_and_ratio():
    s = H.stats([1.0, 2.0, 3.0, 4.0, float("nan")])
    assert s["n"] == 4 and s["median"] == 2.5 and s["min"] == 1.0 and s["max"] == 4.0
    assert s["cv"] == pytest.approx(math.sqrt(1.25) / 2.5)
    assert math.isnan(H.stats([])["median"])
    assert H.ratio(2.0, 1.0) == 2.0
    for bad in [(None, 1.0), (1.0, 0.0), (float("nan"), 1.0), (-1.0, 1.0)]:
        assert math.isnan(H.ratio(*bad))


def test_make_row_schema_ratio_and_status():
    r = row(ours=0.5, peer_ms=2.0)
    assert list(r) == H.FIELDS
    assert r["ratio"] == 4.0 and r["status"] == "ok"
    assert row(peer_ms=float("nan"))["status"] == "n/a"
    assert row(status="FAILED")["status"] == "FAILED"
    with pytest.raises(ValueError):
        row(mode="warm")


# ---- summaries -------------------------------------------------------------------------------------------------
def test_summarize_win_rate_median_min_max_geomean():
    s = H.summarize([0.5, 2.0, 4.0, float("nan")])
    assert s["rows"] == 3
    assert s["win_rate"] == pytest.approx(2 / 3)
    assert s["median"] == 2.0 and s["min"] == 0.5 and s["max"] == 4.0
    assert s["geomean"] == pytest.approx(4.0 ** (1 / 3))
    assert s["avg"] == pytest.approx(6.5 / 3)
    assert H.summarize([])["rows"] == 0 and math.isnan(H.summarize([])["median"])
    assert H.summarize([1.0])["win_rate"] == 0.0  # a tie is not a win


def test_group_and_family_summaries_never_mix_modes_or_peers():
    rows = [row("a", 1, 2, family="gemm"), row("b", 1, 4, family="gemm"), row("c", 2, 1, family="conv"),
            row("a", 1, 3, mode="resident", peer="torch_cpu", family="gemm"),
            row("d", 1, float("nan"), family="conv")]
    g = {(x["mode"], x["peer"]): x for x in H.group_summaries(rows)}
    assert set(g) == {("one_shot", "numpy"), ("resident", "torch_cpu")}
    assert g[("one_shot", "numpy")]["rows"] == 3 and g[("one_shot", "numpy")]["total"] == 4
    assert g[("one_shot", "numpy")]["median"] == 2.0
    assert g[("resident", "torch_cpu")]["median"] == 3.0
    f = {(x["mode"], x["peer"], x["family"]): x for x in H.family_summaries(rows)}
    assert f[("one_shot", "numpy", "gemm")]["rows"] == 2 and f[("one_shot", "numpy", "gemm")]["median"] == 3.0
    assert f[("one_shot", "numpy", "conv")]["win_rate"] == 0.0


def test_aggregate_repeats_medians_cv_and_unstable_flag():
    r1 = [row("a", 1.0, 2.0), row("b", 1.0, 1.0), row("only1", 1.0, 1.0)]
    r2 = [row("a", 1.2, 2.2), row("b", 1.0, 1.0, status="FAILED")]
    agg = {r["case"]: r for r in H.aggregate_repeats([r1, r2], cv_threshold=0.05)}
    a = agg["a"]
    assert a["ours_ms"] == pytest.approx(1.1) and a["peer_ms"] == pytest.approx(2.1)
    assert a["ratio"] == pytest.approx(2.1 / 1.1)
    assert a["cv"] == pytest.approx(0.1 / 1.1) and a["status"] == "unstable" and a["repeats"] == 2
    assert a["ours_ms_repeats"] == [1.0, 1.2]
    assert agg["b"]["status"] == "FAILED" and agg["b"]["cv"] == 0.0
    assert "1 of 2 repeats" in agg["only1"]["notes"]
    st = H.stability(list(agg.values()), [H.repeat_total_ms(r1), H.repeat_total_ms(r2)], 0.05)
    assert st["unstable"] == 1 and st["max_cv"] == pytest.approx(0.1 / 1.1)
    assert st["suite_total_cv"] == pytest.approx(H.stats([3.0, 2.2])["cv"])
    two_peers = H.aggregate_repeats([[row("a", 1.0, 2.0), row("a", 1.0, 3.0, peer="torch_cpu")],
                                     [row("a", 2.0, 2.0), row("a", 2.0, 3.0, peer="torch_cpu")]], 0.05)
    st2 = H.stability(two_peers, [1.0, 2.0], 0.05)
    assert st2["cases_with_cv"] == 1 and st2["unstable"] == 1  # our cv counted once per case and mode
    one = H.aggregate_repeats([[row("a", 1.0, 2.0, cv=0.3)]], 0.1)[0]
    assert one["cv"] == 0.3 and one["status"] == "ok"  # one repeat: the within-run cv, no gate


def test_repeat_total_counts_a_case_once_per_mode():
    rows = [row("a", 1.0, 2.0), row("a", 1.0, 3.0, peer="torch_cpu"), row("a", 5.0, 1.0, mode="resident")]
    assert H.repeat_total_ms(rows) == 6.0


# ---- CSV / JSON ----------------------------------------------------------------------------------------------
def test_csv_json_round_trip_and_environment_block(tmp_path):
    env = report.full_environment("flags here", probe_torch=False)
    for k in report.ENV_KEYS:
        assert k in env
    assert env["flags"] == "flags here" and env["python"] != "n/a"
    rows = H.aggregate_repeats([[row("a", 0.25, 1.0, notes="x, y"), row("b", 1.0, float("nan"))]], 0.1)
    block = {"status": "ok", "stability": H.stability(rows, [1.25], 0.1)}
    csv_p, json_p = report.write_suite(tmp_path, "demo", env, block, rows)
    back = report.read_csv_rows(csv_p)
    assert list(back[0]) == H.FIELDS
    assert back[0]["ours_ms"] == 0.25 and back[0]["ratio"] == 4.0 and back[0]["notes"] == "x, y"
    assert math.isnan(back[1]["peer_ms"]) and back[1]["status"] == "n/a"

    def no_nan(s):
        raise AssertionError(f"non-strict JSON constant {s}")
    payload = json.loads(json_p.read_text(), parse_constant=no_nan)
    assert set(payload) == {"environment", "suite", "rows"}
    assert set(report.ENV_KEYS) <= set(payload["environment"])
    assert payload["rows"][0]["ours_ms_repeats"] == [0.25]
    assert payload["rows"][1]["peer_ms"] is None
    assert set(H.FIELDS) <= set(payload["rows"][0])


# ---- Markdown --------------------------------------------------------------------------------------------------
def _block(name, rows, status="ok"):
    return {"name": name, "title": name.upper(), "status": status, "notes": "", "wall_s": 1.5, "rows": rows,
            "summary": H.group_summaries(rows), "families": H.family_summaries(rows),
            "stability": H.stability(rows, [1.0, 1.1], 0.1), "chart": f"charts/{name}.png" if rows else None}


def test_markdown_report_has_the_seed_summary_shape():
    a = H.aggregate_repeats([[row("k1", 1, 2, suite="alpha", family="gemm"), row("k2", 1, 0.5, suite="alpha")],
                             [row("k1", 1, 2, suite="alpha", family="gemm"), row("k2", 1, 0.5, suite="alpha")]])
    b = H.aggregate_repeats([[row("p1", 1, 3, suite="beta", mode="resident", peer="torch_cpu")]])
    run = {"mode": "quick", "device": "cpu", "repeats": 2, "seed": 1, "cv_threshold": 0.1, "wall_s": 3.0}
    md = report.render_markdown({"cpu": "test"}, run, [_block("alpha", a), _block("beta", b),
                                                       _block("gamma", [], "unavailable: no torch")])
    order = ["## A. Suite summary", "## B. Family summary", "## C. Stability gate", "## D. Full case tables",
             "## E. Suites without rows", "## Totals"]
    pos = [md.index(h) for h in order]
    assert pos == sorted(pos)
    assert "| alpha | one_shot | numpy | 2 | 50.0% |" in md
    assert "| beta | resident | torch_cpu | 1 | 100.0% |" in md
    assert "alpha families:" in md and "| gemm | one_shot | numpy | 1 |" in md
    assert "<summary>ALPHA (2 rows)</summary>" in md and md.count("<details>") == 2
    assert "![alpha speedup](charts/alpha.png)" in md and "- gamma: unavailable: no torch" in md
    tables = [t for t in md.split("\n\n") if t.startswith("| ")]
    for t in tables:
        counts = {ln.count("|") for ln in t.splitlines()}
        assert len(counts) == 1, t  # every line of a table has its header's column count


# ---- PNG -------------------------------------------------------------------------------------------------------
def _decode_png(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + n
    w, h, depth, ctype = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    raw = zlib.decompress(chunks[b"IDAT"])
    assert depth == 8 and ctype == 3 and len(raw) == h * (w + 1)
    rows = [raw[y * (w + 1):(y + 1) * (w + 1)] for y in range(h)]
    assert all(r[0] == 0 for r in rows)  # filter 0
    pal = chunks[b"PLTE"]
    return w, h, (lambda x, y: tuple(pal[3 * rows[y][1 + x]:3 * rows[y][1 + x] + 3])), chunks


def test_png_chart_is_valid_and_bars_are_where_expected(tmp_path):
    rows = [row("fast", 1.0, 10.0), row("slow", 2.0, 1.0), row("missing", 1.0, float("nan"))]
    c = charts.render_chart("t", rows)
    assert len(c.bars) == 2  # the n/a row has no bar
    path = charts.write_chart(tmp_path / "x.png", "t", rows)
    w, h, px, chunks = _decode_png(path.read_bytes())
    assert (w, h) == (c.width, c.height) and b"IEND" in chunks
    green, red, white = (charts.PALETTE[i] for i in (charts.GREEN, charts.RED, charts.WHITE))
    (gx0, gy0, gx1, gy1, gcol), (rx0, ry0, rx1, ry1, rcol) = c.bars
    assert gcol == charts.GREEN and rcol == charts.RED
    assert px((gx0 + gx1) // 2, (gy0 + gy1) // 2) == green
    assert px((rx0 + rx1) // 2, (ry0 + ry1) // 2) == red
    assert rx1 <= gx0 + 1  # the loss extends left of the 1x line, the win to the right
    assert px(rx0 - 3, (gy0 + gy1) // 2) == white  # nothing left of the 1x line on the winning row
    # a 10x win spans one decade: more pixels than the 2x loss
    assert (gx1 - gx0) > (rx1 - rx0) > 0


def test_font_covers_the_label_characters():
    for ch in "abcxyz ABC 0123456789 .,:;=/-_+()<>%*|[]'!?#^":
        assert ch in charts.FONT or ch.upper() in charts.FONT
    assert all(len(g) == 7 and all(0 <= r < 32 for r in g) for g in charts.FONT.values())


# ---- progress --------------------------------------------------------------------------------------------------
def test_progress_plain_lines_without_a_tty():
    buf = io.StringIO()
    p = Progress(2, stream=buf, tty=False)
    p.start_suite(1, "kernel", 1, 2)
    p.set_case("matmul m=8")
    p.set_case("matmul m=8")  # unchanged: no new line
    p.start_suite(2, "ml", 2, 2)
    p.message("done")
    p.close()
    lines = buf.getvalue().splitlines()
    assert "\r" not in buf.getvalue()
    assert len(lines) == 4
    assert "suite 1/2 kernel repeat 1/2" in lines[0] and lines[1].endswith(": matmul m=8")
    assert "suite 2/2 ml repeat 2/2" in lines[2] and lines[3] == "done"
    assert "[" in Progress(3, stream=io.StringIO(), tty=True).line()


# ---- suite plumbing ----------------------------------------------------------------------------------------------
def test_row_schema_check_and_dtype_in_the_key():
    r = row(dtype="float64", path="blas", flops=2e6, nbytes=48.0)
    assert H.check_row(r) == [] and list(r) == H.FIELDS
    assert r["dtype"] == "float64" and r["path"] == "blas" and r["flops"] == 2e6 and r["bytes"] == 48.0
    assert "mode 'x'" in H.check_row(dict(r, mode="x")) and "missing notes" in H.check_row(
        {k: v for k, v in r.items() if k != "notes"})
    assert "status ok without both times" in H.check_row(dict(r, peer_ms=float("nan")))
    assert H.row_key(r) != H.row_key(row())  # float32 and float64 rows of a case never aggregate together
    with pytest.raises(ValueError, match="mode"):
        row(mode="eager")


def test_child_protocol_and_usage(capsys):
    from lightning_core.bench import child
    assert child.parse("@@lc {\"case\": \"x\"}") == {"case": "x"} and child.parse("plain output") is None
    assert child.parse("@@lc not json") is None
    assert child.main(["no_such_suite"]) == 2 and child.main(["kernel", "--repeats", "0"]) == 2


FAKE_SUITES = """
from lightning_core.bench import harness as H, suites


def good(ctx):
    ctx.case("case one")
    jitter = 0.0 if ctx.repeat == 1 else 0.5  # repeat 2 is 50% slower on case b: unstable
    return [H.make_row("fake_a", "fam", "a", "one_shot", 1.0, "numpy", 2.0 + ctx.seed % 2, dtype=ctx.dtype),
            H.make_row("fake_a", "fam", "b", "resident", 1.0 + jitter, "torch_cpu", 0.5, dtype=ctx.dtype),
            H.make_row("fake_a", "fam", "c", "resident", 1.0, "torch_cuda", float("nan"))]  # n/a: not sent


def unavailable(ctx):
    raise suites.SuiteUnavailable("needs a GPU")


def broken(ctx):
    raise RuntimeError("boom")


suites.register("fake_a", "Fake A", good)
suites.register("fake_na", "Fake NA", unavailable)
suites.register("fake_err", "Fake error", broken)
"""


@pytest.fixture
def fake_suites(tmp_path, monkeypatch):
    """Fake suites in a plugin module ($LC_BENCH_PLUGINS): registered here and in the child processes."""
    import importlib
    import sys
    d = tmp_path / "plugins"
    d.mkdir()
    (d / "lc_fake_suites.py").write_text(FAKE_SUITES)
    monkeypatch.syspath_prepend(str(d))
    monkeypatch.setenv("PYTHONPATH", str(d) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("LC_BENCH_PLUGINS", "lc_fake_suites")
    sys.modules.pop("lc_fake_suites", None)
    importlib.import_module("lc_fake_suites")
    yield
    for n in ("fake_a", "fake_na", "fake_err"):
        suites.unregister(n)
    sys.modules.pop("lc_fake_suites", None)


def test_cli_end_to_end_on_fake_suites(tmp_path, fake_suites, capsys):
    t0 = time.perf_counter()
    rc = cli.main(["--suites", "fake_a,fake_na", "--out", str(tmp_path), "--repeats", "2", "--seed", "4",
                   "--device", "cpu", "--quick"])
    assert time.perf_counter() - t0 < 15.0
    assert rc == 0
    for f in ("fake_a.csv", "fake_a.json", "charts/fake_a.png", "report.md", "summary.json"):
        assert (tmp_path / f).is_file(), f
    assert not (tmp_path / "fake_na.csv").exists()
    payload = json.loads((tmp_path / "fake_a.json").read_text())
    rows = {r["case"]: r for r in payload["rows"]}
    assert set(rows) == {"a", "b"} and all(H.check_row(r) == [] for r in payload["rows"])
    assert "1 row(s) n/a in repeat 1" in payload["suite"]["notes"]
    assert rows["a"]["ratio"] == 2.0 and rows["a"]["cv"] == 0.0 and rows["a"]["repeats"] == 2
    assert rows["b"]["status"] == "unstable" and rows["b"]["cv"] == pytest.approx(0.25 / 1.25)
    assert payload["suite"]["stability"]["unstable"] == 1 and payload["suite"]["repeats_done"] == 2
    summ = json.loads((tmp_path / "summary.json").read_text())
    assert summ["suites"]["fake_na"]["status"] == "unavailable: needs a GPU"
    assert summ["run"]["repeats"] == 2 and set(summ["run"]["suite_wall_s"]) == {"fake_a", "fake_na"}
    md = (tmp_path / "report.md").read_text()
    assert "| fake_a | one_shot | numpy | 1 | 100.0% |" in md and "fake_a: b [resident] cv 20.0%" in md
    err = capsys.readouterr().err
    assert "suite 1/2 fake_a repeat 1/2: case one" in err


def test_cli_error_exit_and_usage(tmp_path, fake_suites):
    assert cli.main(["--suites", "fake_err", "--out", str(tmp_path), "--repeats", "1", "--device", "cpu"]) == 1
    summ = json.loads((tmp_path / "summary.json").read_text())
    assert summ["suites"]["fake_err"]["status"] == "error: RuntimeError: boom"
    assert "Traceback" in (tmp_path / "raw" / "fake_err.log").read_text()
    with pytest.raises(SystemExit):
        cli.main(["--suites", "no_such_suite", "--out", str(tmp_path)])
    assert set(suites.DEFAULT_ORDER) <= set(suites.REGISTRY)
    assert "crossover" not in suites.order() and "crossover" in suites.order(True)
