#!/usr/bin/env bash
# charts.sh RESULTS.json OUTDIR: draws the SVG charts of a bench run with
# gnuplot, from results.json only: s1-timeline.svg, s2-throughput.svg,
# s2-p99.svg, s4-timeline.svg, s5-latency.svg (each when its scenario ran).
# The recipe's steps and durations are the server's GET /workflow, as
# recorded in results.json (.workflow, .scenarios.*.critical_path_ms, ...).
set -euo pipefail
res=$1
out=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# CHARTS_FORMAT=png draws PNG previews instead (pngcairo), same names.
ext=${CHARTS_FORMAT:-svg}
if [ "$ext" = png ]; then
    term='set terminal pngcairo size 860,520 enhanced font "sans,10" background "white"'
else
    term='set terminal svg size 860,520 dynamic enhanced font "sans,12" background "white"'
fi
common="$term"
common+='
set grid lc rgb "#dddddd"
set key top left box opaque'

if jq -e '.scenarios.S1' "$res" >/dev/null; then
    # One bar per step and mode: median start..end (ms since arrival); a
    # row per step in table order, async's first, then blocking's.
    jq -r '.scenarios.S1 as $s | (.workflow.steps | map(.name)) as $names |
           ($names | to_entries | map({(.value): (.key + 1)}) | add) as $row |
           ({async: 0, blocking: ($names | length + 1)} | to_entries[]) as $m |
           $s[$m.key].steps_median | to_entries[] |
           "\($m.value + $row[.key]) \(.value.start_ms) \(.value.end_ms) \($m.key)"' "$res" >"$tmp/s1.dat"
    n=$(jq '.workflow.steps | length' "$res")
    crit=$(jq .scenarios.S1.critical_path_ms "$res")
    seq=$(jq .scenarios.S1.sequential_ms "$res")
    # Labels by each name's first word (enhanced text reads _ as a subscript).
    ytics=$(jq -r '(.workflow.steps | map(.name | split("_")[0])) as $n | ($n | length) as $k |
                   [($n | to_entries[] | "\"async \(.value)\" \(.key + 1)"),
                    ($n | to_entries[] | "\"blocking \(.value)\" \(.key + $k + 2)")] | join(", ")' "$res")
    gnuplot <<EOF
$common
set output "$out/s1-timeline.$ext"
set title "S1: one order per mode at scale 1 (median of $(jq .scenarios.S1.repetitions "$res") runs)"
set xlabel "ms since the order arrived"
set xrange [0:$seq + 500]
set yrange [0:2 * $n + 2.5]
set ytics ($ytics)
set arrow from $crit, graph 0 to $crit, graph 1 nohead dt 2 lc rgb "#1f77b4"
set arrow from $seq, graph 0 to $seq, graph 1 nohead dt 2 lc rgb "#d62728"
set label "critical path $crit ms" at $crit + 50, $n + 0.8 tc rgb "#1f77b4"
set label "sequential $seq ms" at $seq - 1900, 2 * $n + 2 tc rgb "#d62728"
unset key
plot "< grep async $tmp/s1.dat" using ((\$2 + \$3) / 2):1:2:3:(\$1 - 0.35):(\$1 + 0.35) with boxxyerror fs solid 0.6 lc rgb "#1f77b4", \\
     "< grep blocking $tmp/s1.dat" using ((\$2 + \$3) / 2):1:2:3:(\$1 - 0.35):(\$1 + 0.35) with boxxyerror fs solid 0.6 lc rgb "#d62728"
EOF
fi

if jq -e '.scenarios.S2' "$res" >/dev/null; then
    for m in blocking async; do
        jq -r --arg m "$m" '.scenarios.S2.runs | map(select(.mode == $m)) | sort_by(.connections)[] |
            "\(.connections) \(.steady_rps) \(.wrk.rps) \(.wrk.p50_ms) \(.wrk.p99_ms) \(.bound_rps)"' "$res" >"$tmp/s2-$m.dat"
    done
    n=$(jq .scenarios.S2.db_pool "$res")
    scale=$(jq .scenarios.S2.scale "$res")
    seq_s=$(jq '.scenarios.S2.sequential_ms / 1000' "$res")
    crit_s=$(jq '.scenarios.S2.critical_path_ms / 1000' "$res")
    brew_s=$(jq '.scenarios.S2.brew_ms / 1000' "$res")
    gnuplot <<EOF
$common
set output "$out/s2-throughput.$ext"
set title "S2: throughput vs concurrency, scale $scale, workers = db pool = $n"
set logscale xy
set xlabel "connections (wrk)"
set ylabel "orders/s"
set xrange [0.8:1300]
set samples 400
seq = $seq_s; crit = $crit_s; brew = $brew_s; n = $n
min(a, b) = a < b ? a : b
bb(x) = min(x, n) / seq
ab(x) = min(x / crit, n / brew)
plot ab(x) with lines lw 7 lc rgb "#c6dbef" title "async bound: min(c / critical path, pool / brew)", \
     bb(x) with lines lw 7 lc rgb "#fcbba1" title "blocking bound: min(c, workers) / sequential", \
     "$tmp/s2-async.dat" using 1:2 with linespoints pt 7 ps 1.2 lw 1.5 lc rgb "#1f4e9a" title "async (steady state)", \
     "$tmp/s2-blocking.dat" using 1:2 with linespoints pt 5 ps 1.2 lw 1.5 lc rgb "#a50f15" title "blocking (steady state)", \
     "$tmp/s2-async.dat" using 1:3 with points pt 6 ps 1.6 lc rgb "#1f4e9a" title "async (wrk: answers / duration)", \
     "$tmp/s2-blocking.dat" using 1:3 with points pt 4 ps 1.6 lc rgb "#a50f15" title "blocking (wrk)"
EOF
    gnuplot <<EOF
$common
set output "$out/s2-p99.$ext"
set title "S2: latency vs concurrency (wrk), scale $scale, workers = db pool = $n"
set logscale xy
set xlabel "connections (wrk)"
set ylabel "ms"
set xrange [0.8:1300]
plot "$tmp/s2-async.dat" using 1:5 with linespoints pt 7 lw 2 lc rgb "#1f77b4" title "async p99", \
     "$tmp/s2-blocking.dat" using 1:5 with linespoints pt 5 lw 2 lc rgb "#d62728" title "blocking p99", \
     "$tmp/s2-async.dat" using 1:4 with linespoints pt 6 dt 3 lc rgb "#1f77b4" title "async p50", \
     "$tmp/s2-blocking.dat" using 1:4 with linespoints pt 4 dt 3 lc rgb "#d62728" title "blocking p50", \
     1000 * $crit_s with lines dt 2 lc rgb "#1f77b4" title "critical path", \
     1000 * $seq_s with lines dt 2 lc rgb "#d62728" title "sequential"
EOF
fi

if jq -e '.scenarios.S4' "$res" >/dev/null; then
    jq -r '.scenarios.S4.samples[] | "\(.t_s) \(.rss_kb / 1024) \(.running // 0) \(.client_conns) \(.threads)"' \
        "$res" >"$tmp/s4.dat"
    orders=$(jq .scenarios.S4.orders "$res")
    gnuplot <<EOF
$common
set output "$out/s4-timeline.$ext"
set title "S4: $orders async orders sent at once, scale 1: server memory and orders in flight"
set xlabel "s since the orders were sent"
set ylabel "server VmRSS (MiB)"
set y2label "orders"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:$orders * 1.15]
set key outside bottom center horizontal
plot "$tmp/s4.dat" using 1:2 axes x1y1 with lines lw 2 lc rgb "#2ca02c" title "VmRSS", \
     "$tmp/s4.dat" using 1:3 axes x1y2 with lines lw 2 lc rgb "#1f77b4" title "in flight (rows running)", \
     "$tmp/s4.dat" using 1:4 axes x1y2 with lines dt 2 lc rgb "#ff7f0e" title "client connections"
EOF
fi

if jq -e '.scenarios.S5' "$res" >/dev/null; then
    for m in blocking async; do
        jq -r --arg m "$m" '.scenarios.S5.runs | map(select(.mode == $m)) | sort_by(.rate)[] |
            "\(.rate) \(.latency_ms.p50) \(.latency_ms.p99)"' "$res" >"$tmp/s5-$m.dat"
    done
    scale=$(jq .scenarios.S5.scale "$res")
    cb=$(jq .scenarios.S5.capacity.blocking "$res")
    ca=$(jq .scenarios.S5.capacity.async "$res")
    pool=$(jq .scenarios.S5.db_pool "$res")
    gnuplot <<EOF
$common
set output "$out/s5-latency.$ext"
set title "S5: latency vs arrival rate (open loop, from intended send time), scale $scale, workers = db pool = $pool"
set logscale xy
set xlabel "arrival rate (orders/s)"
set ylabel "latency (ms)"
set arrow from $cb, graph 0 to $cb, graph 1 nohead dt 2 lw 2 lc rgb "#d62728"
set arrow from $ca, graph 0 to $ca, graph 1 nohead dt 2 lw 2 lc rgb "#1f77b4"
set label sprintf("blocking capacity %.0f/s", $cb) at $cb * 1.05, graph 0.93 tc rgb "#d62728"
set label sprintf("async capacity %.0f/s", $ca) at $ca * 1.05, graph 0.85 tc rgb "#1f77b4"
plot "$tmp/s5-blocking.dat" using 1:3 with linespoints pt 5 lw 2 lc rgb "#d62728" title "blocking p99", \\
     "$tmp/s5-blocking.dat" using 1:2 with linespoints pt 4 dt 3 lc rgb "#d62728" title "blocking p50", \\
     "$tmp/s5-async.dat" using 1:3 with linespoints pt 7 lw 2 lc rgb "#1f77b4" title "async p99", \\
     "$tmp/s5-async.dat" using 1:2 with linespoints pt 6 dt 3 lc rgb "#1f77b4" title "async p50"
EOF
fi
