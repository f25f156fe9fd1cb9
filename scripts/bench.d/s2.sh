# s2.sh: S2, a concurrency sweep per mode (sourced by scripts/bench).
#
# Every run gets a fresh server with --workers N --db-pool N (the same
# number of database connections for both modes), a warm-up, then wrk for
# a fixed duration at one concurrency; the server is then stopped with
# SIGTERM, which answers every order still in flight before it exits, so
# runs never overlap.
#
# Throughput is read twice: wrk's (answers / duration, which includes the
# start of the run, before the first orders can finish) and the steady
# state from the database, which the goals use: the orders whose steps
# ended in the run, each weighted by a trapezoidal window (0 until one
# order time after the start, rising linearly to 1 over two order times,
# 1 until two order times before the end, falling to 0 at the end), divided
# by the window's effective length (duration - 3 order times). A window
# with hard edges would count one wave of N orders too many or too few when
# the workers finish in lock step, as blocking ones do; the ramps average
# that out. The bounds: blocking = min(c, N) / sequential time; async =
# min(c / critical path, N / brew time), with the durations read from the
# server's GET /workflow (workflow_facts).

s2_bound() { # MODE CONNS -> orders/s
    awk -v m="$1" -v c="$2" -v n="$S2_POOL" -v s="$S2_SCALE" -v seq_ms="$WF_SEQ_MS" -v crit_ms="$WF_CRIT_MS" \
        -v brew_ms="$WF_BREW_MS" 'BEGIN {
        seq = seq_ms / 1000 * s; crit = crit_ms / 1000 * s; brew = brew_ms / 1000 * s
        if (m == "blocking") b = (c < n ? c : n) / seq
        else { a = c / crit; p = n / brew; b = a < p ? a : p }
        printf "%.4f\n", b }'
}

run_s2_one() { # MODE CONNS
    local mode=$1 c=$2 tag="s2-$1-c$2" id0 t0 t1 snap0 snap1 wrkjson cpu stop_s warm steady bound sargs tk0 tk1
    start_server "$tag-server" --workers "$S2_POOL" --db-pool "$S2_POOL"
    sargs=$(args_json "${SERVER_ARGS[@]}")
    warm_up "$mode" $((4 * S2_POOL)) "$S2_POOL"
    id0=$(max_order_id)
    cpu_snapshot "$RAW/$tag.cpu0"
    tk0=$(proc_ticks "$SERVER_PID")
    t0=$(now)
    wrk_args "$mode" "$S2_SCALE" "$c" "$S2_DURATION"
    wrkjson=$(run_wrk "$RAW/$tag.wrk")
    t1=$(now)
    tk1=$(proc_ticks "$SERVER_PID")
    cpu_snapshot "$RAW/$tag.cpu1"
    cpu=$(cpu_split "$RAW/$tag.cpu0" "$RAW/$tag.cpu1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
          "$SERVER_PID" "$KITCHEN_PID" "$$")
    stop_s=$(stop_proc "$SERVER_PID" 300)
    # Steady state: the trapezoidal window described at the top.
    local T a p b
    if [ "$mode" = blocking ]; then T=$(awk -v s="$S2_SCALE" -v ms="$WF_SEQ_MS" 'BEGIN { print ms / 1000 * s }')
    else T=$(awk -v s="$S2_SCALE" -v ms="$WF_CRIT_MS" 'BEGIN { print ms / 1000 * s }'); fi
    a=$(awk -v t0="$t0" -v T="$T" 'BEGIN { printf "%.6f", t0 + T }')
    p=$(awk -v T="$T" 'BEGIN { print 2 * T }')
    b=$(awk -v t0="$t0" -v d="$S2_DURATION" 'BEGIN { printf "%.6f", t0 + d }')
    steady=$(sql "SELECT json_build_object(
                    'window_s', round(($b - $a - $p)::numeric, 3), 'ramp_s', $p,
                    'weighted_orders', round(coalesce(sum(w), 0)::numeric, 2),
                    'orders_in_run', count(*) FILTER (WHERE status = 'done' AND fin <= $b),
                    'mean_elapsed_ms', round((sum(w * elapsed_ms) / nullif(sum(w), 0))::numeric, 1),
                    'mean_queued_ms', round((sum(w * queued_ms) / nullif(sum(w), 0))::numeric, 1),
                    'failed', count(*) FILTER (WHERE status <> 'done'),
                    'total', count(*))
                  FROM (SELECT status, elapsed_ms, queued_ms, fin,
                               CASE WHEN status <> 'done' THEN 0
                                    ELSE greatest(0, least(1, (fin - $a) / $p, ($b - fin) / $p)) END AS w
                        FROM (SELECT status, elapsed_ms, queued_ms,
                                     extract(epoch FROM started_at) + elapsed_ms / 1000.0 AS fin
                              FROM orders WHERE id > $id0 AND mode = '$mode') f) o")
    bound=$(s2_bound "$mode" "$c")
    jq -n --arg mode "$mode" --argjson c "$c" --argjson wrk "$wrkjson" --argjson steady "$steady" \
        --argjson bound "$bound" --argjson cpu "$cpu" --argjson stop_s "$stop_s" --argjson args "$sargs" \
        --arg wrk_cmd "${WRK_CMD[*]}" --argjson hz "$(getconf CLK_TCK)" \
        --argjson tk0 "[$(tr ' ' , <<<"$tk0")]" --argjson tk1 "[$(tr ' ' , <<<"$tk1")]" \
        '{mode: $mode, connections: $c, bound_rps: $bound, wrk: $wrk, steady: $steady,
          steady_rps: ($steady.weighted_orders / $steady.window_s),
          of_bound: (($steady.weighted_orders / $steady.window_s) / $bound),
          wrk_of_bound: ($wrk.rps / $bound),
          server_cpus: ((($tk1[0] + $tk1[1]) - ($tk0[0] + $tk0[1])) / $hz / $wrk.duration_s),
          cpu: $cpu, drain_s: $stop_s, server_args: $args, wrk_command: $wrk_cmd}' >"$RAW/$tag.json"
    say "  $mode c=$c: $(jq -r '"wrk \(.wrk.rps)/s, steady \(.steady_rps * 10 | round / 10)/s = \(.of_bound * 1000 | round / 10)% of \(.bound_rps * 10 | round / 10)/s, p99 \(.wrk.p99_ms) ms, non2xx \(.wrk.non2xx), other load \(.cpu.other_cpus) CPUs"' "$RAW/$tag.json")"
}

run_s2() {
    local mode c
    say "S2: concurrency sweep ($S2_CONNS) at scale $S2_SCALE, $S2_DURATION s per run, workers = db pool = $S2_POOL"
    for mode in blocking async; do
        for c in $S2_CONNS; do
            run_s2_one "$mode" "$c"
        done
    done
    local top
    top=$(tr ' ' '\n' <<<"$S2_CONNS" | sort -n | tail -n 1)
    jq -s --argjson n "$S2_POOL" --argjson scale "$S2_SCALE" --argjson secs "$S2_DURATION" --argjson top "$top" \
        --argjson seq "$WF_SEQ_MS" --argjson crit "$WF_CRIT_MS" --argjson brew "$WF_BREW_MS" '
        (map(select(.mode == "blocking" and .connections == $top))[0].steady_rps) as $b |
        (map(select(.mode == "async" and .connections == $top))[0].steady_rps) as $a |
        (map(select(.mode == "async")) | map(.of_bound) | min) as $worst |
        ((map(select(.mode == "async" and .connections == $top))[0].bound_rps) /
         (map(select(.mode == "blocking" and .connections == $top))[0].bound_rps)) as $bound_ratio |
        ($bound_ratio * 0.9 * 10 | floor / 10) as $want |
        {scenario: "S2", scale: $scale, duration_s: $secs, workers: $n, db_pool: $n,
         sequential_ms: ($seq * $scale), critical_path_ms: ($crit * $scale), brew_ms: ($brew * $scale),
         bounds: {blocking: "min(c, workers) / sequential time", async: "min(c / critical path, db pool / brew time)"},
         steady_state: "orders of the run from the orders table, weighted by a trapezoidal window (zero for one order time, ramps of two order times at both ends), over the effective window length (duration - 3 order times)",
         runs: .,
         ratio_at_top: {connections: $top, async_rps: $a, blocking_rps: $b, ratio: ($a / $b), bound_ratio: $bound_ratio},
         goals: [
           {id: "S2-async-bound", goal: "async throughput at >= 95% of its bound at every concurrency (steady state)",
            value: $worst, unit: "fraction of bound (worst run)", met: ($worst >= 0.95)},
           {id: "S2-ratio", goal: "async/blocking throughput >= \($want)x with equal database connections (bound \($bound_ratio * 10 | round / 10)x)",
            value: ($a / $b), unit: "x at \($top) connections", met: ($a / $b >= $want)},
           {id: "S2-errors", goal: "every answer 2xx, no socket errors",
            value: (map(.wrk.non2xx + .wrk.connect_errors + .wrk.read_errors + .wrk.write_errors + .wrk.timeouts + .steady.failed) | add),
            unit: "errors", met: ((map(.wrk.non2xx + .wrk.connect_errors + .wrk.read_errors + .wrk.write_errors + .wrk.timeouts + .steady.failed) | add) == 0)}]}
    ' "$RAW"/s2-*-c*.json >"$RAW/s2.json"
}
