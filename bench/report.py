"""drover - bench/report.py: bench/REPORT.md and the charts from a run.

  report.py RESULTS.json --outdir DIR

Writes DIR/REPORT.md, DIR/b1.png and DIR/b6.png (gnuplot, pngcairo or
png terminal).  Exits 1 when gnuplot fails or the results hold an error.
"""
import argparse
import json
import os
import subprocess
import sys


def f(v, nd=0):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def sp(s, nd=0):
    """median [min–max] (n)"""
    if not s or s.get("median") is None:
        return "–"
    return (f"{f(s['median'], nd)} [{f(s['min'], nd)}–{f(s['max'], nd)}]"
            f" (n={s['n']})")


def gnuplot(script, outdir):
    p = subprocess.run(["gnuplot"], input=script, text=True, cwd=outdir,
                       capture_output=True)
    if p.returncode != 0:
        raise RuntimeError(f"gnuplot failed: {p.stderr.strip()[-300:]}")


def terminal():
    p = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True,
                       text=True)
    return "pngcairo" if "pngcairo" in (p.stdout + p.stderr) else "png"


B1_CONTENDERS = [  # key, label
    ("drover", "drover, 1 worker"),
    ("limit", "**limit**: bare C librdkafka + libpq, 1 PG transaction/task"),
    ("peer", "peer: Python, 1 thread, same SQL as the limit"),
    ("peer_4", "peer: Python, 4 processes in one group, same SQL"),
    ("replay", "diagnostic (not the limit): bare C replaying drover's SQL")]


def verdict(v, goal, higher_is_better=True, unit="×"):
    """'goal ... met (v)' or 'goal ... **missed** by N % (v)'."""
    if v is None:
        return "not measured"
    sign = "≥" if higher_is_better else "≤"
    ok = v >= goal if higher_is_better else v <= goal
    if ok:
        return f"goal {sign} {goal:g}{unit} met ({v:.2f}{unit})"
    return (f"goal {sign} {goal:g}{unit} **missed** by "
            f"{100 * abs(goal - v) / goal:.0f} % ({v:.2f}{unit})")


def chart_b1(b1, outdir):
    short = {"drover": "drover", "limit": "limit (C)", "peer": "peer x1",
             "peer_4": "peer x4", "replay": "C replay (diag.)"}
    rows = [(short[k], b1[k]) for k, _ in B1_CONTENDERS if b1.get(k)]
    with open(os.path.join(outdir, "b1.dat"), "w") as fh:
        for i, (name, s) in enumerate(rows):
            if s.get("median") is not None:
                fh.write(f'{i} "{name}" {s["median"]} {s["min"]} {s["max"]}\n')
    gnuplot(f"""set terminal {terminal()} size 800,450
set output 'b1.png'
set title 'B1 task throughput (median, min-max; trivial plan, 12 partitions, EOS)'
set ylabel 'tasks/s'
set style fill solid 0.6
set boxwidth 0.6
set yrange [0:*]
set xtics rotate by 0
unset key
plot 'b1.dat' using 1:3:xtic(2) with boxes lc rgb '#4472c4', \\
     '' using 1:3:4:5 with yerrorbars lc rgb 'black' pt 0
""", outdir)
    os.remove(os.path.join(outdir, "b1.dat"))


def chart_b6(b6, outdir):
    pts = b6["points"]
    with open(os.path.join(outdir, "b6.dat"), "w") as fh:
        for w in sorted((k for k in pts if k != "limit"), key=int):
            s = pts[w]["tasks_per_s"]
            if s.get("median") is not None:
                fh.write(f"{w} {s['median']} {s['min']} {s['max']} "
                         f"{100 * (pts[w]['machine_cpu_busy'] or 0)}\n")
    lim = pts["limit"]["tasks_per_s"]["median"] or 0
    gnuplot(f"""set terminal {terminal()} size 800,450
set output 'b6.png'
set title 'B6 scaling: drover workers on 12 partitions (2-core machine)'
set xlabel 'workers'
set ylabel 'tasks/s'
set y2label 'machine CPU busy %'
set y2range [0:100]
set y2tics
set yrange [0:*]
set xtics (1, 2, 3, 6)
set key bottom right
plot 'b6.dat' using 1:2:3:4 with yerrorlines lw 2 title 'drover tasks/s', \\
     {lim} with lines dt 2 title 'limit, 1 process', \\
     'b6.dat' using 1:5 axes x1y2 with linespoints dt 3 title 'CPU busy %'
""", outdir)
    os.remove(os.path.join(outdir, "b6.dat"))


def headline(r):
    out = ["| benchmark | drover | limit | peer | unit | vs limit | vs peer |",
           "|---|---|---|---|---|---|---|"]
    for b in ("B1", "B2", "B3", "B4", "B5", "B6", "B8", "B9"):
        x = r.get(b)
        if not x:
            continue
        if "error" in x or "missing" in x:
            out.append(f"| {b} | {x.get('error') or x.get('missing')} "
                       "| | | | | |")
            continue

        def fig(k):
            v = x.get(k)
            if isinstance(v, dict):
                v = v.get("median", v.get("loaded"))
            return f(v, 2 if isinstance(v, float) and v < 10 else 0)
        out.append(f"| {b} | {fig('drover')} | {fig('limit')} | {fig('peer')}"
                   f" | {x.get('unit', '')} | {f(x.get('vs_limit'), 2)} "
                   f"| {f(x.get('vs_peer'), 2)} |")
    return out


def goals(r):
    """Where each goal stands, one row per goal."""
    o = ["## Goals", "", "| benchmark | goal | where it stands |",
         "|---|---|---|"]
    b1 = r.get("B1") or {}
    if "ratios" in b1:
        for k, what in (("limit", "drover ÷ limit (bare C, minimal SQL)"),
                        ("peer", "drover ÷ peer (Python, 1 thread)"),
                        ("peer_4", "drover ÷ peer (Python, 4 processes)")):
            o.append(f"| B1 | {what} | "
                     f"{verdict(b1.get('vs_' + k), b1['goal']['vs_' + k])} |")
    b8 = r.get("B8") or {}
    if "fast" in b8:
        g = b8["goal"]
        o.append(f"| B8 | fast-task p95 latency | "
                 f"{verdict(b8['fast']['p95_s'], g['fast_p95_s'], False, ' s')} |")
        o.append(f"| B8 | slow tasks unaffected: p95 ≤ their "
                 f"{b8['slow_step_s']} s step + 3 s | "
                 f"{verdict(b8['slow']['p95_s'], g['slow_p95_s'], False, ' s')} |")
    b9 = r.get("B9") or {}
    if "vs_ideal" in b9:
        o.append(f"| B9 | makespan ÷ ideal ({b9['ideal_s']:g} s) | "
                 f"{verdict(b9['vs_ideal'], b9['goal']['vs_ideal'], False)} |")
    return o + [""] if len(o) > 4 else []


def section_b1(b1):
    g = b1["goal"]
    o = ["## B1 task throughput", "",
         f"Setup: {json.dumps(b1['setup'])}.", "",
         "| contender | tasks/s median [min–max] | PG commits/task "
         "| worker CPU ms/task | machine CPU busy |", "|---|---|---|---|---|"]
    for k, label in B1_CONTENDERS:
        pt = b1["per_task"].get(k)
        if not pt:
            continue
        o.append(f"| {label} | {sp(b1[k])} | {f(pt['pg_commits'], 2)} | "
                 f"{f(pt['worker_cpu_ms'], 2)} | "
                 f"{f(100 * (pt['machine_cpu_busy'] or 0))} % |")
    o += ["", "Ratios (drover ÷ contender, per repetition, then median "
          "[min–max]):", ""]
    for k, label in B1_CONTENDERS[1:]:
        if "vs_" + k in b1["ratios"]:
            goal = g.get("vs_" + k)
            o.append(f"- drover ÷ {k}: {sp(b1['ratios']['vs_' + k], 2)}"
                     + (f"; {verdict(b1['ratios']['vs_' + k]['median'], goal)}"
                        if goal else " (diagnostic, no goal)") + ".")
    runs = b1["runs"]
    for k in ("peer", "peer_4"):
        lp = sorted(l["tasks_per_s"] / p["tasks_per_s"]
                    for l, p in zip(runs["limit"], runs[k])
                    if l.get("tasks_per_s") and p.get("tasks_per_s"))
        if lp:
            o.append(f"- ceiling against {k}: the limit itself reaches "
                     f"{lp[len(lp) // 2]:.2f}× it (median per repetition); "
                     f"at 0.8× the limit drover would be "
                     f"{0.8 * lp[len(lp) // 2]:.2f}× it.")
    o += ["", "![B1](b1.png)", ""]
    for k, label in (("commit_interval_ms", "commit interval (ms)"),
                     ("concurrency", "executors (concurrency)")):
        pts = b1.get("sweeps", {}).get(k) or {}
        if not pts:
            continue
        o += [f"drover, 1 worker, tasks/s vs {label}:", "",
              "| " + label + " | tasks/s |", "|---|---|"]
        for x in sorted(pts, key=int):
            o.append(f"| {x} | {sp(pts[x])} |")
        o.append("")
    return o


def section_b8(b8):
    o = ["## B8 head-of-line", "",
         f"{b8['slow_tasks']} slow tasks (one `sql` step, pg_sleep "
         f"{b8['slow_step_s']} s), one per partition spread over "
         f"{b8['partitions']}, produced first; then {b8['fast_tasks']} "
         f"trivial tasks round-robin over all partitions. drover, "
         f"{b8['workers']} worker, {b8['concurrency']} executors. Latency = "
         "status event time − produce time (read_committed status topic).",
         "", "| tasks | p50 s | p95 s | max s | goal |", "|---|---|---|---|---|"]
    g = b8["goal"]
    for k, goal in (("fast", g["fast_p95_s"]), ("slow", g["slow_p95_s"])):
        x = b8[k]
        o.append(f"| {k} | {f(x['p50_s'], 1)} | {f(x['p95_s'], 1)} | "
                 f"{f(x['max_s'], 1)} | {verdict(x['p95_s'], goal, False, ' s')} |")
    run = b8["run"]
    return o + ["", f"PG commits/task {f(run['pg_commits_per_task'], 1)}, "
                f"worker CPU {f(run['worker_cpu_ms_per_task'], 2)} ms/task.",
                ""]


def section_b9(b9):
    run = b9["run"]
    return ["## B9 concurrency", "",
            f"{b9['tasks']} migrations of one `sql` step (pg_sleep "
            f"{b9['task_s']} s) each, {b9['tasks'] // b9['partitions']} per "
            f"partition on {b9['partitions']} partitions; drover "
            f"{b9['workers']} workers × {b9['concurrency']} executors = "
            f"{b9['slots']} slots. Makespan = first produce to last status "
            f"event; ideal = one step ({b9['ideal_s']:g} s).", "",
            f"- makespan **{b9['drover']:.1f} s** = {b9['vs_ideal']:.2f}× "
            f"the ideal: {verdict(b9['vs_ideal'], b9['goal']['vs_ideal'], False)}.",
            f"- per-task latency p50 {b9['latency_p50_s']:.1f} s, p95 "
            f"{b9['latency_p95_s']:.1f} s; PG commits/task "
            f"{f(run['pg_commits_per_task'], 1)}, worker CPU "
            f"{f(run['worker_cpu_ms_per_task'], 2)} ms/task.", ""]


def section_b4(b4):
    o = ["## B4 memory", "",
         f"Peak RSS (VmHWM) in MB; loaded = started on {b4['queued_tasks']:,} "
         f"queued tasks with queued.max.messages.kbytes = "
         f"{b4['queued_max_messages_kbytes']}.", "",
         "| contender | idle MB | loaded MB |", "|---|---|---|"]
    for k in ("drover", "limit", "peer"):
        o.append(f"| {k} | {f(b4[k]['idle'], 1)} | {f(b4[k]['loaded'], 1)} |")
    d = b4["drover"]
    for ph, goal in (("idle", b4["goal"]["idle_mb"]),
                     ("loaded", b4["goal"]["loaded_mb"])):
        verdict = "met" if d[ph] <= goal else \
            f"**missed** by {d[ph] - goal:.1f} MB"
        o.append(f"- drover {ph}: {d[ph]} MB, goal ≤ {goal} MB {verdict}.")
    return o + [""]


def section_b5(b5):
    return ["## B5 recovery", "",
            f"3 drover workers, {b5['tasks']:,} trivial tasks, kill -9 of one "
            f"under load (kafka: {json.dumps(b5['kafka'])}). Throughput "
            f"before the kill: {f(b5['throughput_before_tasks_per_s'])} tasks/s;"
            f" seconds until the group is back to ≥ 90 %: "
            f"**{f(b5['drover'], 1)}**. {b5['note']}.", ""]


def section_b6(b6):
    o = ["## B6 scaling", "", "| workers | tasks/s | machine CPU busy "
         "| worker CPU ms/task |", "|---|---|---|---|"]
    for w in sorted(b6["points"], key=lambda k: (k == "limit", k)):
        p = b6["points"][w]
        o.append(f"| {w} | {sp(p['tasks_per_s'])} | "
                 f"{f(100 * (p['machine_cpu_busy'] or 0))} % | "
                 f"{f(p['worker_cpu_ms_per_task'], 2)} |")
    return o + ["", "![B6](b6.png)", ""]


def b2_lock_rows(y, op):
    o = []
    for c, lk in (y.get("lock_ms") if op == "backfill" else
                  (y.get("copy_rows") or {}).get("lock_ms") or {}).items():
        if not lk:
            continue
        o.append(f"| {op} | {c} | {lk['batches']:,} | {f(lk['median_ms'])} "
                 f"| {f(lk['p99_ms'])} | {f(lk['max_ms'])} | "
                 f"{f(lk['first_ms'])} |")
    return o


def b2_one(lbl, y):
    cp = y.get("copy_rows") or {}
    worst = max(y["drover_max_batch_ms"] or 0, cp.get("max_batch_ms") or 0)
    o = [f"### {lbl}: {y['rows']:,} rows, batches of {y['batch']:,}, "
         f"{y['reps']} repetition(s)", "",
         "| contender | rows/s (median) |", "|---|---|",
         f"| drover backfill | {f(y['drover'])} |",
         f"| limit (one native UPDATE) | {f(y['limit'])} |",
         f"| peer ({y['peer_name']}) | {f(y['peer'])} |", "",
         f"- backfill: drover ÷ limit = {sp(y['vs_limit_spread'], 2)} "
         f"(goal ≥ 0.8: {'met' if y['vs_limit'] >= 0.8 else '**missed**'})"
         f"; drover ÷ peer = {sp(y['vs_peer_spread'], 2)}.",
         f"- copy_rows: drover {f(cp.get('drover_s'), 2)} s, one INSERT ... "
         f"SELECT {f(cp.get('limit_s'), 2)} s: drover ÷ limit = "
         f"{sp(cp.get('ratio_spread') or {}, 2)}.",
         f"- longest batch (row locks held) over all repetitions: backfill "
         f"{f(y['drover_max_batch_ms'])} ms, copy_rows "
         f"{f(cp.get('max_batch_ms'))} ms (goal < 1000 ms: "
         f"{'met' if worst < 1000 else '**missed**'}).", "",
         "Lock time per batch (ms; a native statement is one batch holding "
         "its locks throughout; \"first\" = the step's start — ledger row "
         "and count(*) of the source for the progress total, outside any "
         "batch transaction — plus the first batch, so it is not lock "
         "time):", "",
         "| op | contender | batches | median | p99 | max | first |",
         "|---|---|---|---|---|---|---|"]
    return o + b2_lock_rows(y, "backfill") + b2_lock_rows(y, "copy_rows") + [""]


def section_b2(x):
    o = ["## B2 bulk transforms", ""]
    if "missing" in x or "error" in x:
        return o + [f"Not measured: {x.get('missing') or x.get('error')}.", ""]
    o += [f"Method: {x.get('method')}.", ""]
    o += b2_one("B2", x)
    big = x.get("rows_10m")
    if isinstance(big, dict) and "drover" in big:
        o += b2_one("B2 at 10M rows", big)
    elif isinstance(big, dict):
        o += [f"10M rows: not measured: {big.get('missing') or big.get('error')}.", ""]
    return o


def section_ext(name, title, x):
    o = [f"## {name} {title}", ""]
    if "missing" in x or "error" in x:
        return o + [f"Not measured: {x.get('missing') or x.get('error')}.", ""]
    o += [f"| contender | {x['unit']} |", "|---|---|",
          f"| drover | {f(x['drover'])} |", f"| limit | {f(x['limit'])} |",
          f"| peer | {f(x['peer'])} |", "",
          f"drover ÷ limit = {f(x['vs_limit'], 2)}, drover ÷ peer = "
          f"{f(x['vs_peer'], 2)}.", ""]
    cg = x.get("callgrind") or {}
    if name == "B3" and "drover_ir_per_record" in cg:
        o += [f"callgrind, instructions per record ({cg['records']:,} "
              f"records): drover (drv_task_decode + drv_task_destroy) "
              f"{cg['drover_ir_per_record']:,.0f}, of which avro_value_read "
              f"{cg['drover_read_ir_per_record']:,.0f}; the raw avro-c read "
              f"{cg['raw_read_ir_per_record']:,.0f}: raw ÷ drover = "
              f"{cg['vs_limit']:.2f} (time ratio above: "
              f"{f(x['vs_limit'], 2)}). The rest of drover's cost is "
              "allocation: the fresh value per record, the arena and the "
              "task's strings (see callgrind_annotate).", ""]
        if cg.get("note"):
            o += [f"Note: {cg['note']}.", ""]
    return o + ["The script's own JSON line:", "", "```",
                json.dumps(x.get("script"), sort_keys=True), "```", ""]


def section_profile(pr):
    o = ["## Where the time goes (perf, B1 load)", ""]
    if pr.get("note"):
        o += [f"Note: {pr['note']}.", ""]
    for k, x in pr.items():
        if not isinstance(x, dict):
            continue
        if "skipped" in x:
            o.append(f"- {k}: {x['skipped']}")
            continue
        o += [f"{k}: {x['tasks']} tasks in the profiled window, "
              f"{x['cpu_s']} CPU seconds of the worker process "
              f"(full listing: results/{x['file']}). Top symbols:", "",
              "```"] + x["top"] + ["```", ""]
    return o


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--outdir", required=True)
    a = ap.parse_args()
    with open(a.results) as fh:
        r = json.load(fh)
    o = ["# drover benchmarks", "",
         f"Run {r['date']} ({r['mode']} mode) on {r['host']['cpus']} CPUs, "
         f"load average {r['host']['load_before']:.1f} at the start. "
         "Generated by bench/report.py from "
         f"bench/results/{os.path.basename(a.results)}; every figure is "
         "a median with [min–max] over the repetitions, ratios are taken "
         "within one repetition (same invocation).", "",
         "## Headline", ""] + headline(r) + [""] + goals(r)
    errors = []
    # "ratios": B1 against the minimal-SQL limit (older results lack it)
    if isinstance(r.get("B1"), dict) and "ratios" in r["B1"]:
        o += section_b1(r["B1"])
        chart_b1(r["B1"], a.outdir)
    if "B2" in r:
        o += section_b2(r["B2"])
    if "B3" in r:
        o += section_ext("B3", "decode", r["B3"])
    if isinstance(r.get("B4"), dict) and "drover" in r["B4"]:
        o += section_b4(r["B4"])
    if isinstance(r.get("B5"), dict) and "tasks" in r["B5"]:
        o += section_b5(r["B5"])
    if isinstance(r.get("B6"), dict) and "points" in r["B6"]:
        o += section_b6(r["B6"])
        chart_b6(r["B6"], a.outdir)
    if isinstance(r.get("B8"), dict) and "fast" in r["B8"]:
        o += section_b8(r["B8"])
    if isinstance(r.get("B9"), dict) and "run" in r["B9"]:
        o += section_b9(r["B9"])
    if isinstance(r.get("profile"), dict) and "error" not in r["profile"]:
        o += section_profile(r["profile"])
    for b in ("B1", "B2", "B3", "B4", "B5", "B6", "B8", "B9"):
        if isinstance(r.get(b), dict) and "error" in r[b]:
            errors.append(b)
    notes = os.path.join(os.path.dirname(__file__), "report-notes.md")
    if os.path.exists(notes):
        with open(notes) as fh:
            o += [fh.read()]
    with open(os.path.join(a.outdir, "REPORT.md"), "w") as fh:
        fh.write("\n".join(o) + "\n")
    if errors:
        print(f"report: benchmarks failed: {', '.join(errors)}",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
