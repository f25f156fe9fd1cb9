# s4.sh: S4, ten thousand async orders in flight at once at scale 1
# (sourced by scripts/bench).
#
# coffee-client opens one connection per order and sends them all at once.
# While they run, a sampler reads every half second the server's thread
# count, VmRSS and VmHWM (/proc/PID/status), its open fds, the client
# connections established to it (ss) and the orders in flight (rows still
# 'running' in the orders table: an async order inserts its row first).
# Memory per in-flight order = (VmHWM after - VmRSS before) / orders.
#
# The brews are bounded by the database pool, so the batch lasts about
# 3 s of kitchen + orders / pool x 1 s of brewing; the kitchen connections
# are bounded too (file descriptors: see KITCHEN_CONNECTIONS in
# scripts/bench), so kitchen calls over the bound wait for a connection.

s4_sampler() { # PID PORT OUTFILE
    local pid=$1 port=$2 out=$3 running
    while kill -0 "$pid" 2>/dev/null && [ ! -e "$out.stop" ]; do
        running=$(sql "SELECT count(*) FROM orders WHERE status = 'running'" 2>/dev/null || echo null)
        printf '%s %s %s %s %s %s %s\n' "$(now)" "$(proc_status "$pid" Threads)" "$(proc_status "$pid" VmRSS)" \
            "$(proc_status "$pid" VmHWM)" "$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)" \
            "$(ss -Htn state established "( sport = :$port )" 2>/dev/null | wc -l)" "$running" >>"$out"
        sleep 0.5
    done
}

run_s4() {
    local n=$S4_ORDERS tag=s4 id0 t0 t1 sampler th0 th1 rss0 hwm0 hwm1 port cpu sargs stop_s client_rc=0
    say "S4: $n async orders at once at scale 1 (db pool $S4_POOL, kitchen connections $S4_KITCHEN_CONNS)"
    start_server "$tag-server" --workers 1 --db-pool "$S4_POOL" \
        --max-connections $((n + 500)) --max-inflight $((n + 500)) \
        --kitchen-connections "$S4_KITCHEN_CONNS" --kitchen-keepalive "$S4_KITCHEN_CONNS" \
        --step-timeout-ms "$S4_STEP_TIMEOUT_MS" --db-wait-ms "$S4_DB_WAIT_MS"
    sargs=$(args_json "${SERVER_ARGS[@]}")
    port=${SERVER_URL##*:}
    warm_up async $((2 * S4_POOL)) "$S4_POOL"
    id0=$(max_order_id)
    th0=$(proc_status "$SERVER_PID" Threads)
    rss0=$(proc_status "$SERVER_PID" VmRSS)
    hwm0=$(proc_status "$SERVER_PID" VmHWM)
    : >"$RAW/$tag.samples"
    rm -f "$RAW/$tag.samples.stop"
    s4_sampler "$SERVER_PID" "$port" "$RAW/$tag.samples" &
    sampler=$!
    LIB_PIDS+=("$sampler")
    cpu_snapshot "$RAW/$tag.cpu0"
    t0=$(now)
    S4_CLIENT_CMD=("$BIN/coffee-client" --url "$SERVER_URL" --mode async --orders "$n" --concurrency "$n"
                   --scale 1 --timeout-ms 600000 --json)
    "${S4_CLIENT_CMD[@]}" >"$RAW/$tag.client.json" 2>"$RAW/$tag.client.log" || client_rc=$?
    t1=$(now)
    cpu_snapshot "$RAW/$tag.cpu1"
    touch "$RAW/$tag.samples.stop"
    wait "$sampler" 2>/dev/null || true
    th1=$(proc_status "$SERVER_PID" Threads)
    hwm1=$(proc_status "$SERVER_PID" VmHWM)
    cpu=$(cpu_split "$RAW/$tag.cpu0" "$RAW/$tag.cpu1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
          "$SERVER_PID" "$KITCHEN_PID" "$$")
    local db
    db=$(sql "SELECT json_build_object('orders', count(*), 'done', count(*) FILTER (WHERE status = 'done'),
                                       'max_elapsed_ms', max(elapsed_ms), 'mean_queued_ms', round(avg(queued_ms)::numeric, 1))
              FROM orders WHERE id > $id0")
    stop_s=$(stop_proc "$SERVER_PID" 120)
    [ -s "$RAW/$tag.client.json" ] || die "coffee-client gave no result (exit $client_rc): $(tail -n 3 "$RAW/$tag.client.log")"
    awk -v t0="$t0" 'NF == 7 { printf "{\"t_s\":%.2f,\"threads\":%s,\"rss_kb\":%s,\"hwm_kb\":%s,\"fds\":%s,\"client_conns\":%s,\"running\":%s}\n",
                                      $1 - t0, $2, $3, $4, $5, $6, $7 }' "$RAW/$tag.samples" >"$RAW/$tag.samples.jsonl"
    jq -n --argjson n "$n" --argjson client "$(jq '.modes[0] | del(.median_order, .timeline)' "$RAW/$tag.client.json")" \
        --argjson client_rc "$client_rc" --argjson db "$db" --slurpfile samples "$RAW/$tag.samples.jsonl" \
        --argjson th0 "$th0" --argjson th1 "$th1" --argjson rss0 "$rss0" --argjson hwm0 "$hwm0" --argjson hwm1 "$hwm1" \
        --argjson cpu "$cpu" --argjson args "$sargs" --arg client_cmd "${S4_CLIENT_CMD[*]}" --argjson stop_s "$stop_s" \
        --argjson pool "$S4_POOL" --argjson kconn "$S4_KITCHEN_CONNS" \
        --arg t0 "$t0" --arg t1 "$t1" \
        '($samples | map(.threads) | max) as $thmax |
         ($samples | map(.running // 0) | max) as $inflight |
         {scenario: "S4", orders: $n, scale: 1, server_args: $args, client_command: $client_cmd,
          kitchen_connections_bound: $kconn, db_pool: $pool,
          batch_s: (($t1 | tonumber) - ($t0 | tonumber)),
          batch_lower_bound_s: (3 + ($n / $pool | ceil) * 1),
          client: $client, client_exit: $client_rc, db: $db,
          in_flight: {max_running_rows: $inflight, max_client_connections: ($samples | map(.client_conns) | max),
                      max_fds: ($samples | map(.fds) | max)},
          threads: {before: $th0, max_during: $thmax, after: $th1},
          memory_kb: {rss_before: $rss0, hwm_before: $hwm0, hwm_after: $hwm1,
                      per_in_flight_order: (($hwm1 - $rss0) / $n)},
          cpu: $cpu, drain_s: $stop_s, samples: $samples}
         | .goals = [
            {id: "S4-errors", goal: "all \($n) orders answered 200", value: ($n - .client.ok), unit: "errors",
             met: (.client.ok == $n and .client_exit == 0)},
            {id: "S4-at-once", goal: "all \($n) orders in flight at the same time (rows running at once)",
             value: $inflight, unit: "orders", met: ($inflight == $n)},
            {id: "S4-threads", goal: "server thread count unchanged", value: "\($th0) / \($thmax) / \($th1)",
             unit: "threads before / max during / after", met: ($th0 == $thmax and $th1 == $th0)},
            {id: "S4-memory", goal: "at most 50 KB of server memory per in-flight order ((VmHWM - RSS before) / orders)",
             value: (($hwm1 - $rss0) / $n), unit: "KB/order", met: (($hwm1 - $rss0) / $n <= 50)}]' >"$RAW/s4.json"
    say "  $(jq -r '"\(.client.ok)/\(.orders) ok in \(.batch_s | round) s, max \(.in_flight.max_running_rows) in flight, threads \(.threads.before)/\(.threads.max_during)/\(.threads.after), \(.memory_kb.per_in_flight_order | round) KB/order (HWM \(.memory_kb.hwm_after) kB)"' "$RAW/s4.json")"
}
