# s6.sh: S6, the concurrency sweep of what each mode costs (sourced by
# scripts/bench; not in the default set: scripts/bench --only S6 --out
# bench/results/s6).
#
# For each mode (S6_MODES: blocking, threads, offload, async) and each
# concurrency C (S6_CONCS: 10 100 1000 3000 10000), a fresh server (so
# that its peaks are this point's) gets C orders at the same instant,
# placed server-side by GET /rush?modes=MODE&customers=C (the client's own
# connection and fd limits then play no part), at S6_SCALE. Each point is
# bounded: the stream is read for S6_BOUND_S seconds at most; orders not
# ended by then are counted as "unfinished at the bound", and the server is
# stopped (drain 1 s, then cancel). Recorded per point: orders/s, p50/p99
# (server-measured, /rush's summary), errors by kind (the orders' own
# error texts, step names stripped), threads peak (the executor's and the
# process's), RSS and VSZ peak (VmHWM, VmPeak), context switches per order
# (the whole server process: its live threads' /proc counts, plus, for
# threads, the order threads that ended meanwhile, which /proc no longer
# lists, as their executor counted them; and the executor's own threads),
# server and
# PostgreSQL CPU per order, database connections peak (the executor's, and
# PostgreSQL's client backends as sampled). And the limits it ran under:
# ulimit -n and -u, kernel threads-max, max_connections, the threads
# mode's stack size and the default one (ulimit -s).

: "${S6_MODES:=blocking threads offload async}"
: "${S6_CONCS:=10 100 1000 3000 10000}"
: "${S6_SCALE:=0.02}"          # 138 ms sequential, 80 ms critical path, 20 ms brew
: "${S6_BOUND_S:=60}"          # each point's bound
: "${S6_WORKERS:=8}"           # blocking's --workers (its default)
: "${S6_THREADS_STACK_KB:=256}" # threads' --threads-stack-kb (its default)

# s6_sample PID OUT: until PID ends, every 0.5 s, the client backends of
# the cluster and the server's threads, one "backends threads" line each.
s6_sample() {
    local pid=$1 out=$2 b t
    while kill -0 "$pid" 2>/dev/null; do
        b=$(sql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'" 2>/dev/null || echo 0)
        t=$(proc_status "$pid" Threads 2>/dev/null || echo 0)
        echo "$b ${t:-0}" >>"$out"
        sleep 0.5
    done
}

# s6_point MODE C: one point; prints its JSON.
s6_point() {
    local mode=$1 c=$2 tag="s6-$1-$2"
    start_server "$tag" --workers "$S6_WORKERS" --max-inflight 20000 --max-threads 20000 \
        --threads-stack-kb "$S6_THREADS_STACK_KB" --kitchen-connections 2000 --step-timeout-ms 60000 \
        --db-wait-ms 60000 --drain-timeout-ms 1000
    local pid=$SERVER_PID t0 t1 tick0 tick1 cs0 cs1 sampler
    : >"$RAW/$tag.samples"
    s6_sample "$pid" "$RAW/$tag.samples" &
    sampler=$!
    cpu_snapshot "$RAW/$tag.cpu0"
    tick0=$(proc_ticks "$pid" | awk '{ print $1 + $2 }')
    cs0=$(proc_ctxsw "$pid" | awk '{ print $1 + $2 }')
    t0=$(now)
    # /rush places at most 1,000 customers (RUSH_MAX_CUSTOMERS): more are
    # that many rushes at once, one stream each.
    local left=$c n k=0 curls=()
    while [ "$left" -gt 0 ]; do
        n=$((left < 1000 ? left : 1000))
        curl -sN --max-time "$S6_BOUND_S" "$SERVER_URL/rush?modes=$mode&customers=$n&scale=$S6_SCALE" \
            >"$RAW/$tag.$k.sse" 2>"$RAW/$tag.$k.curl" &
        curls+=($!)
        left=$((left - n))
        k=$((k + 1))
    done
    wait "${curls[@]}" 2>/dev/null || true
    cat "$RAW/$tag".*.sse >"$RAW/$tag.sse"
    t1=$(now)
    cpu_snapshot "$RAW/$tag.cpu1"
    tick1=$(proc_ticks "$pid" | awk '{ print $1 + $2 }')
    cs1=$(proc_ctxsw "$pid" | awk '{ print $1 + $2 }')
    local hwm peak
    hwm=$(proc_status "$pid" VmHWM)
    peak=$(proc_status "$pid" VmPeak)
    stop_proc "$pid" 120 >/dev/null
    wait "$sampler" 2>/dev/null || true
    local pgt hz
    pgt=$(pg_ticks "$RAW/$tag.cpu0" "$RAW/$tag.cpu1")
    hz=$(getconf CLK_TCK)
    # The stream: its summary (absent when the bound cut it), its orders.
    # Several streams: their summaries sample the same executor over
    # about the same window, so the peaks and costs are the largest of
    # them; orders/s is every ok order over the slowest stream's wall.
    local summary orders
    summary=$(awk '/^event: summary/ { getline; sub(/^data: /, ""); print }' "$RAW/$tag.sse" |
              jq -sc --argjson k "$k" 'if length < $k then null else
                  {orders_per_s: ((map(.ok) | add) / ((map(.wall_ms) | max) / 1000)),
                   threads_peak: (map(.threads_peak) | max), threads_during: (map(.threads_during) | max),
                   context_switches: (map(.context_switches) | max), cpu_ms: (map(.cpu_ms) | max),
                   db_connections_used: (map(.db_connections_used) | max)} end')
    orders=$(awk '/^event: order/ { getline; sub(/^data: /, ""); print }' "$RAW/$tag.sse" |
             jq -sc '{ended: length, ok: (map(select(.status == "done")) | length),
                      errors: (map(select(.status != "done") | (.error // "no error text")
                                   | sub("^[a-z_]+: "; "") | sub("[0-9]+"; "N"; "g") | .[0:70])
                               | group_by(.) | map({(.[0]): length}) | add // {}),
                      elapsed: (map(select(.status == "done") | .elapsed_ms) | sort)}')
    jq -n --arg mode "$mode" --argjson c "$c" --argjson summary "$summary" --argjson o "$orders" \
        --argjson secs "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
        --argjson ticks "$((tick1 - tick0))" --argjson pgticks "${pgt:-0}" --argjson hz "$hz" \
        --argjson cs "$((cs1 - cs0))" --argjson hwm "${hwm:-0}" --argjson peak "${peak:-0}" \
        --argjson samples "$(awk '{ if ($1 > b) b = $1; if ($2 > t) t = $2 } END { printf "[%d,%d]", b, t }' "$RAW/$tag.samples")" \
        --argjson bound "$S6_BOUND_S" \
        '($o.elapsed) as $e | ($o.ok) as $ok |
         def pct(p): if ($e | length) == 0 then null else $e[((p / 100 * ($e | length)) | ceil) - 1 | if . < 0 then 0 else . end] end;
         {mode: $mode, concurrency: $c, seconds: $secs, ended: $o.ended, ok: $ok,
          unfinished_at_bound: ($c - $o.ended), bounded: ($summary == null),
          orders_per_s: (if $summary != null then $summary.orders_per_s else ($ok / $secs) end),
          p50_ms: pct(50), p99_ms: pct(99),
          errors: ($o.errors + (if $c > $o.ended then {("unfinished at the \($bound) s bound"): ($c - $o.ended)} else {} end)),
          threads_peak: ($summary.threads_peak // null), process_threads_peak: ([$samples[1], ($summary.threads_during // 0)] | max),
          rss_peak_mb: ($hwm / 1024), vsz_peak_mb: ($peak / 1024),
          context_switches_per_order: (if $ok > 0 then ($cs + (if $mode == "threads" then ($summary.context_switches // 0) else 0 end)) / $ok else null end),
          executor_context_switches_per_order: (if $summary != null and $ok > 0 then $summary.context_switches / $ok else null end),
          server_cpu_ms_per_order: (if $ok > 0 then $ticks / $hz * 1000 / $ok else null end),
          postgres_cpu_ms_per_order: (if $ok > 0 then $pgticks / $hz * 1000 / $ok else null end),
          db_connections_peak: ($summary.db_connections_used // null), postgres_client_backends_peak: $samples[0]}'
}

run_s6() {
    say "S6: concurrency sweep ($S6_CONCS) of $S6_MODES at scale $S6_SCALE, each point bounded at $S6_BOUND_S s"
    local limits
    limits=$(jq -n --arg n "$(ulimit -n)" --arg u "$(ulimit -u)" --arg tm "$(cat /proc/sys/kernel/threads-max)" \
        --arg mc "$(sql 'SHOW max_connections')" --arg s "$(ulimit -s)" --argjson tk "$S6_THREADS_STACK_KB" \
        --arg mm "$(cat /proc/sys/vm/max_map_count)" \
        '{ulimit_n: $n, ulimit_u: $u, threads_max: $tm, max_connections: $mc, max_map_count: $mm,
          threads_stack_kb: $tk, default_stack_kb: $s}')
    say "  limits: $(jq -c . <<<"$limits")"
    local mode c points=()
    for mode in $S6_MODES; do
        for c in $S6_CONCS; do
            s6_point "$mode" "$c" >"$RAW/s6-$mode-$c.json"
            jq -r '"  \(.mode) x \(.concurrency): \(.ok)/\(.concurrency) ok in \(.seconds | . * 10 | round / 10) s, \(.orders_per_s | round) orders/s, p99 \(.p99_ms // "-") ms, threads \(.process_threads_peak), RSS \(.rss_peak_mb | round) MB, VSZ \(.vsz_peak_mb | round) MB\(if (.errors | length) > 0 then ", errors \(.errors | tostring)" else "" end)"' \
                "$RAW/s6-$mode-$c.json" >&2
            points+=("$RAW/s6-$mode-$c.json")
        done
    done
    jq -s --argjson limits "$limits" --argjson scale "$S6_SCALE" --argjson bound "$S6_BOUND_S" \
        --argjson workers "$S6_WORKERS" \
        '{scenario: "S6", scale: $scale, bound_s: $bound, blocking_workers: $workers, limits: $limits,
          command: "GET /rush?modes=MODE&customers=C&scale=\($scale), a fresh server per point", points: .}' \
        "${points[@]}" >"$RAW/s6.json"
    s6_report "$RAW/s6.json" >"$OUT/s6.md"
    s6_chart "$RAW/s6.json" "$OUT/s6-sweep.svg" || say "  S6: no chart (gnuplot failed)"
}

# s6_report JSON: the Markdown table.
s6_report() {
    jq -r '"S6, the concurrency sweep: scale \(.scale), each point bounded at \(.bound_s) s, blocking with \(.blocking_workers) workers; limits: ulimit -n \(.limits.ulimit_n), ulimit -u \(.limits.ulimit_u), threads-max \(.limits.threads_max), max_connections \(.limits.max_connections), threads stack \(.limits.threads_stack_kb) KiB (default \(.limits.default_stack_kb) KiB).\n",
        "| mode | C | ok | orders/s | p50 ms | p99 ms | threads (executor / process) | RSS / VSZ MB | cs per order (process / executor) | server / PG CPU ms per order | DB conns (executor / PG) | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        (.points[] | def r(n): if . == null then "-" else (. * n | round / n | tostring) end;
         "| \(.mode) | \(.concurrency) | \(.ok) | \(.orders_per_s | r(1)) | \(.p50_ms | r(1)) | \(.p99_ms | r(1)) | \(.threads_peak // "-") / \(.process_threads_peak) | \(.rss_peak_mb | r(1)) / \(.vsz_peak_mb | r(1)) | \(.context_switches_per_order | r(10)) / \(.executor_context_switches_per_order | r(10)) | \(.server_cpu_ms_per_order | r(100)) / \(.postgres_cpu_ms_per_order | r(100)) | \(.db_connections_peak // "-") / \(.postgres_client_backends_peak) | \(if (.errors | length) == 0 then "none" else (.errors | to_entries | map("\(.value) \(.key)") | join("; ")) end) |")' "$1"
}

# s6_chart JSON SVG: orders/s and process threads against concurrency, one
# line per mode (log x).
s6_chart() {
    local dat
    dat=$(mktemp)
    jq -r '.points | group_by(.mode)[] | (.[0].mode), (.[] | "\(.concurrency) \(.orders_per_s) \(.process_threads_peak) \(.vsz_peak_mb)"), "", ""' "$1" >"$dat"
    gnuplot <<EOF
set terminal svg size 900,420 font "sans,11"
set output "$2"
set multiplot layout 1,2 title "S6: C orders at once (scale $(jq -r .scale "$1"))"
set logscale x
set xlabel "concurrency"
set key top left
set ylabel "orders/s"
plot for [i=0:3] "$dat" index i using 1:2 with linespoints title columnheader(1)
set logscale y
set ylabel "server threads (peak)"
plot for [i=0:3] "$dat" index i using 1:3 with linespoints title columnheader(1)
unset multiplot
EOF
    local rc=$?
    rm -f "$dat"
    return $rc
}
