# s3.sh: S3, the service's own cost at scale 0 (sourced by scripts/bench).
#
# With every wait at zero, an order costs only what the server does: parse
# the request, three kitchen calls, three statements (insert, brew, finish),
# the JSON answer. The server's CPU time (utime + stime of all its threads,
# /proc/PID/stat) is read before and after a wrk run and divided by the
# orders it handled (rows added to the orders table, so orders still in
# flight when wrk stopped are counted with the CPU they used). The exact
# per-thread run time (schedstat) is recorded beside it as a cross-check,
# and the same division for the kitchen and for the PostgreSQL cluster (its
# postmaster and every backend): the whole stack's cost per order.

run_s3_one() { # MODE
    local mode=$1 tag="s3-$1" id0 t0 t1 tk0 tk1 rt0 rt1 cs0 cs1 kt0 kt1 wrkjson cpu orders sargs stop_s
    start_server "$tag-server" --workers "$S3_POOL" --db-pool "$S3_POOL"
    sargs=$(args_json "${SERVER_ARGS[@]}")
    warm_up "$mode" $((4 * S3_POOL)) "$S3_POOL"
    id0=$(max_order_id)
    cpu_snapshot "$RAW/$tag.cpu0"
    tk0=$(proc_ticks "$SERVER_PID"); rt0=$(proc_runtime_ns "$SERVER_PID"); cs0=$(proc_ctxsw "$SERVER_PID")
    kt0=$(proc_ticks "$KITCHEN_PID")
    t0=$(now)
    wrk_args "$mode" 0 "$S3_CONNS" "$S3_DURATION"
    wrkjson=$(run_wrk "$RAW/$tag.wrk")
    # Orders still in flight finish within milliseconds at scale 0.
    sleep 1
    t1=$(now)
    tk1=$(proc_ticks "$SERVER_PID"); rt1=$(proc_runtime_ns "$SERVER_PID"); cs1=$(proc_ctxsw "$SERVER_PID")
    kt1=$(proc_ticks "$KITCHEN_PID")
    cpu_snapshot "$RAW/$tag.cpu1"
    cpu=$(cpu_split "$RAW/$tag.cpu0" "$RAW/$tag.cpu1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
          "$SERVER_PID" "$KITCHEN_PID" "$$")
    local pgt
    pgt=$(pg_ticks "$RAW/$tag.cpu0" "$RAW/$tag.cpu1")
    orders=$(sql "SELECT json_build_object('orders', count(*), 'done', count(*) FILTER (WHERE status = 'done'))
                  FROM orders WHERE id > $id0 AND mode = '$mode'")
    stop_s=$(stop_proc "$SERVER_PID" 60)
    jq -n --arg mode "$mode" --argjson c "$S3_CONNS" --argjson wrk "$wrkjson" --argjson orders "$orders" --argjson cpu "$cpu" \
        --argjson hz "$(getconf CLK_TCK)" --argjson args "$sargs" --arg wrk_cmd "${WRK_CMD[*]}" \
        --argjson tk0 "[$(tr ' ' , <<<"$tk0")]" --argjson tk1 "[$(tr ' ' , <<<"$tk1")]" \
        --argjson kt0 "[$(tr ' ' , <<<"$kt0")]" --argjson kt1 "[$(tr ' ' , <<<"$kt1")]" \
        --argjson rt0 "$rt0" --argjson rt1 "$rt1" --argjson pgt "$pgt" --arg bin "$BIN" \
        --argjson pgset "$(pg_settings_json)" --argjson senv "$(args_json "${SERVER_ENV[@]}")" \
        --argjson cs0 "[$(tr ' ' , <<<"$cs0")]" --argjson cs1 "[$(tr ' ' , <<<"$cs1")]" --argjson stop_s "$stop_s" \
        '($orders.orders) as $n | (1e6 / $hz) as $us_per_tick |
         {mode: $mode, connections: $c, wrk: $wrk, orders: $n, orders_done: $orders.done,
          orders_per_s: $wrk.rps,
          server_us_per_order: ((($tk1[0] + $tk1[1]) - ($tk0[0] + $tk0[1])) * $us_per_tick / $n),
          server_user_us_per_order: (($tk1[0] - $tk0[0]) * $us_per_tick / $n),
          server_sys_us_per_order: (($tk1[1] - $tk0[1]) * $us_per_tick / $n),
          server_schedstat_us_per_order: (($rt1 - $rt0) / 1000 / $n),
          server_context_switches_per_order: {voluntary: (($cs1[0] - $cs0[0]) / $n), involuntary: (($cs1[1] - $cs0[1]) / $n)},
          kitchen_us_per_order: ((($kt1[0] + $kt1[1]) - ($kt0[0] + $kt0[1])) * $us_per_tick / $n),
          db_us_per_order: ($pgt * $us_per_tick / $n), bin: $bin,
          cpu: $cpu, server_args: $args, server_env: $senv, postgresql: $pgset, wrk_command: $wrk_cmd,
          drain_s: $stop_s}' >"$RAW/$tag.json"
    say "  $mode: $(jq -r '"\(.orders_per_s) orders/s, server \(.server_us_per_order | round) us/order (user \(.server_user_us_per_order | round), sys \(.server_sys_us_per_order | round); schedstat \(.server_schedstat_us_per_order | round)), database \(.db_us_per_order | round) us/order, kitchen \(.kitchen_us_per_order | round) us/order, other load \(.cpu.other_cpus) CPUs"' "$RAW/$tag.json")"
}

run_s3() {
    say "S3: scale 0, $S3_CONNS connections, $S3_DURATION s per mode, workers = db pool = $S3_POOL"
    run_s3_one blocking
    run_s3_one async
    jq -s '{scenario: "S3", runs: .,
            goals: [(map(select(.mode == "async"))[0]) as $a |
              {id: "S3-async-cpu", goal: "at most 100 us of server CPU per async order (utime+stime / orders)",
               value: $a.server_us_per_order, unit: "us/order", met: ($a.server_us_per_order <= 100 and $a.wrk.non2xx == 0)}]}' \
        "$RAW/s3-blocking.json" "$RAW/s3-async.json" >"$RAW/s3.json"
}
