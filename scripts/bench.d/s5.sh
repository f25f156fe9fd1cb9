# s5.sh: S5, latency against arrival rate, open loop (sourced by scripts/bench).
#
# coffee-client --rate sends orders at fixed intended times (uniform) for
# S5_DURATION seconds per rate and measures each latency from its intended
# send time (coordinated omission corrected, as wrk2). Both modes get the
# same S5_POOL database connections (--workers = --db-pool), so each mode's
# capacity follows from the recipe at S5_SCALE (its durations read from
# the server's GET /workflow; the figures below are today's):
#   blocking: workers / sequential time         (8 / 0.345 s = 23 orders/s)
#   async:    min(connections / critical path,  (1000 in flight / 0.2 s)
#               brews / brew time)              (7 / 0.05 s = 140 orders/s)
# (brews: the connections brews may hold, /readyz's db_pool.brews: the
# pool less the one kept for rows and probes.)
# Below capacity p50 stays at the order's own elapsed time; above it the
# queue grows for as long as the load lasts and p99 explodes: the knee.

run_s5_mode() { # MODE RATES
    local mode=$1 rates=$2 tag="s5-$1"
    "$BIN/coffee-client" --url "$SERVER_URL" --mode "$mode" --scale "$S5_SCALE" --rate "$rates" \
        --duration "$S5_DURATION" --timeout-ms $((WRK_TIMEOUT_S * 1000)) --json \
        >"$RAW/$tag.json" 2>"$RAW/$tag.log" || say "  $mode: some orders failed (see $RAW/$tag.log)"
    jq -r '.runs[] | "  \(.mode) \(.rate)/s: p50 \(.latency_ms.p50 | round) ms, p99 \(.latency_ms.p99 | round) ms, \(.ok)/\(.sent) ok"' \
        "$RAW/$tag.json" >&2
}

run_s5() {
    say "S5: open loop at scale $S5_SCALE, $S5_DURATION s per rate, workers = db pool = $S5_POOL"
    start_server s5-server --workers "$S5_POOL" --db-pool "$S5_POOL"
    local sargs load0 load1 cpu
    load0=$(cut -d' ' -f1-3 /proc/loadavg)
    sargs=$(args_json "${SERVER_ARGS[@]}")
    warm_up async $((4 * S5_POOL)) "$S5_POOL"
    warm_up blocking $((2 * S5_POOL)) "$S5_POOL"
    cpu_snapshot "$RAW/s5.cpu0"
    local t0 t1
    t0=$(now)
    run_s5_mode blocking "$S5_RATES_BLOCKING"
    run_s5_mode async "$S5_RATES_ASYNC"
    t1=$(now)
    cpu_snapshot "$RAW/s5.cpu1"
    # The client is a child of this shell: counted with the stack.
    local brews
    brews=$(curl -sS --max-time 5 "$SERVER_URL/readyz" | jq -e '.db_pool.brews') ||
        { say "  S5: /readyz has no db_pool.brews (an older server?): capacity from the whole pool"; brews=$S5_POOL; }
    cpu=$(cpu_split "$RAW/s5.cpu0" "$RAW/s5.cpu1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
          "$SERVER_PID" "$KITCHEN_PID" "$$")
    load1=$(cut -d' ' -f1-3 /proc/loadavg)
    stop_proc "$SERVER_PID" 120 >/dev/null
    jq -s --arg load0 "$load0" --arg load1 "$load1" --argjson cpu "$cpu" --argjson scale "$S5_SCALE" --argjson pool "$S5_POOL" --argjson brews "$brews" --argjson d "$S5_DURATION" --argjson args "$sargs" \
        --argjson seq1 "$WF_SEQ_MS" --argjson crit1 "$WF_CRIT_MS" --argjson brew1 "$WF_BREW_MS" \
        '($seq1 * $scale) as $seq | ($crit1 * $scale) as $crit | ($brew1 * $scale) as $brew |
         {scenario: "S5", scale: $scale, db_pool: $pool, brews: $brews, workers: $pool, duration_s: $d, server_args: $args,
          loadavg: {before: $load0, after: $load1}, cpu: $cpu,
          command: "coffee-client --rate RATES --duration \($d) --scale \($scale) --json",
          capacity: {blocking: ($pool / ($seq / 1000)),
                     async: ([1000 / ($crit / 1000), $brews / ($brew / 1000)] | min)},
          runs: (map(.runs) | add)}
         | .goals = [.capacity as $c |
             (.runs | map(select(.mode == "blocking" and .rate <= 0.8 * $c.blocking)) | max_by(.rate)) as $b |
             (.runs | map(select(.mode == "async" and .rate > $c.blocking * 2 and .rate <= 0.8 * $c.async)) | max_by(.rate)) as $a |
             {id: "S5-knee", goal: "async holds p99 within 1.5x its critical path at a rate over twice blocking capacity",
              value: ($a.latency_ms.p99 // null), unit: "ms p99 at \($a.rate // 0)/s",
              met: (($a.latency_ms.p99 // 1e9) <= 1.5 * $crit)}]' \
        "$RAW/s5-blocking.json" "$RAW/s5-async.json" >"$RAW/s5.json"
}
