# s1.sh: S1, one order at a time at scale 1 (sourced by scripts/bench).
#
# Each repetition orders one coffee per mode, one after the other, on an
# otherwise idle server (the two modes alternate, so slow moments of the
# machine spread over both). The figure is the server's elapsed_ms (arrival
# to the end of the last step), beside the client's round trip; the goals
# compare the median with the critical path and the sequential sum (4000 ms
# and 6900 ms today), both read from the server's GET /workflow.

run_s1() {
    local reps=$S1_REPS i mode body rt
    local -a args=(--workers 8 --db-pool 32)
    say "S1: one order per mode at scale 1, $reps repetitions"
    start_server s1-server "${args[@]}"
    local sargs
    sargs=$(args_json "${SERVER_ARGS[@]}")
    warm_up blocking 16 8
    warm_up async 64 32
    : >"$RAW/s1-orders.jsonl"
    for i in $(seq 1 "$reps"); do
        for mode in blocking async; do
            body=$(curl -s --max-time 60 -w '\n%{http_code} %{time_total}' "$SERVER_URL/make-coffee?mode=$mode&scale=1")
            rt=$(tail -n 1 <<<"$body")
            head -n -1 <<<"$body" | jq -c --arg rep "$i" --arg rt "$rt" \
                '{rep: ($rep | tonumber), mode, http: ($rt | split(" ")[0] | tonumber),
                  client_ms: (($rt | split(" ")[1] | tonumber) * 1000), elapsed_ms, queued_ms,
                  steps: [.steps[] | {name, start_ms, end_ms, queued_ms}]}' >>"$RAW/s1-orders.jsonl"
            say "  rep $i $mode: $(tail -n 1 "$RAW/s1-orders.jsonl" | jq -r '"\(.http) \(.elapsed_ms) ms"')"
        done
    done
    local stop_s
    stop_s=$(stop_proc "$SERVER_PID")
    jq -s --argjson args "$sargs" --argjson stop_s "$stop_s" --argjson crit "$WF_CRIT_MS" --argjson seq "$WF_SEQ_MS" '
        def stats: sort as $s | ($s | length) as $n |
            {n: $n, min: $s[0], median: (if $n % 2 == 1 then $s[($n - 1) / 2] else ($s[$n / 2 - 1] + $s[$n / 2]) / 2 end),
             max: $s[-1]};
        def side($m; $target; $tol):
            [.[] | select(.mode == $m)] as $o |
            {target_ms: $target, tolerance_ms: $tol,
             all_answered_200: ([$o[].http] | all(. == 200)),
             elapsed_ms: ([$o[].elapsed_ms] | stats), client_ms: ([$o[].client_ms] | stats),
             over_target_ms: (([$o[].elapsed_ms] | stats) | {min: (.min - $target), median: (.median - $target)}),
             steps_median: ([$o[].steps[]] as $all | reduce ($o[0].steps[].name) as $n ({};
                              . + {($n): {start_ms: ([$all[] | select(.name == $n) | .start_ms] | stats.median),
                                          end_ms: ([$all[] | select(.name == $n) | .end_ms] | stats.median)}}))};
        {scenario: "S1", server_args: $args,
         warm_up: "16 blocking orders (8 at a time) and 64 async orders (32 at a time) at scale 0 before measuring",
         repetitions: (map(.rep) | max), orders: ., critical_path_ms: $crit, sequential_ms: $seq,
         blocking: side("blocking"; $seq; 10), async: side("async"; $crit; 5), server_stop_s: $stop_s}
        | .goals = [
            {id: "S1-async", goal: "async within 5 ms of the critical path (\($crit) ms), median of the repetitions",
             value: .async.elapsed_ms.median, unit: "ms", met: (.async.all_answered_200 and (.async.elapsed_ms.median - $crit | fabs) <= 5)},
            {id: "S1-blocking", goal: "blocking within 10 ms of the sequential sum (\($seq) ms), median of the repetitions",
             value: .blocking.elapsed_ms.median, unit: "ms", met: (.blocking.all_answered_200 and (.blocking.elapsed_ms.median - $seq | fabs) <= 10)}]
    ' "$RAW/s1-orders.jsonl" >"$RAW/s1.json"
}
