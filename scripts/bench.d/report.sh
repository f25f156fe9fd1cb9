#!/usr/bin/env bash
# report.sh RESULTS.json: prints the Markdown report of a bench run. Only
# formats what results.json holds; computes nothing new.
set -euo pipefail
jq -r '
def r1: if . == null then "-" else (. * 10 | round / 10 | tostring) end;
def r0: if . == null then "-" else (. | round | tostring) end;
def pct: if . == null then "-" else ((. * 1000 | round / 10 | tostring) + " %") end;
def yes: if . then "met" else "**missed**" end;
.environment as $e |
"# Coffee service benchmark: results",
"",
"Run \($e.date) with `\(.command)` (\(.duration_s) s\(if .quick then ", quick smoke run" else "" end)), commit `\($e.git.commit[0:12])`\(if $e.git.dirty then " (with uncommitted changes)" else "" end) on branch `\($e.git.branch)`.",
"",
"## Machine",
"",
"| | |", "|---|---|",
"| CPU | \($e.machine.cpu), \($e.machine.cpus) CPUs (\($e.machine.threads_per_core) thread per core, hypervisor \($e.machine.hypervisor)) |",
"| RAM | \($e.machine.ram_gib) GiB |",
"| OS, kernel | \($e.machine.os), \($e.machine.kernel) |",
"| load average at start | \($e.machine.loadavg_at_start) |",
"| fd limit (soft/hard), somaxconn, ephemeral ports | \($e.limits.nofile_soft)/\($e.limits.nofile_hard), \($e.limits.somaxconn), \($e.limits.ephemeral_ports) |",
"| libcurl, libpq | \($e.versions.libcurl), \($e.versions.libpq) |",
"| libmicrohttpd, jansson | \($e.versions.libmicrohttpd), \($e.versions.jansson) |",
"| PostgreSQL server | \($e.versions.postgresql_server) |",
"| PostgreSQL settings (SHOW) | \(($e.postgresql // {}) | to_entries | map("\(.key) \(.value)") | join(", ") | if . == "" then "not recorded (fsync, synchronous_commit, full_page_writes off before issue 19)" else . end) |",
"| wrk, gnuplot | \($e.versions.wrk), \($e.versions.gnuplot) |",
"| build | \($e.build.compiler), \($e.build.build_type) |",
"",
"## Goals",
"",
"| goal | figure | |", "|---|---|---|",
(.goals[] | "| \(.id): \(.goal) | \(if (.value | type) == "number" then (.value * 100 | round / 100) else .value end) \(.unit) | \(.met | yes) |"),
"",
(.scenarios.S1 // empty |
 "## S1: one order per mode at scale 1",
 "",
 "\(.repetitions) repetitions per mode, one order at a time, modes alternating; server `\(.server_args | join(" "))`; \(.warm_up).",
 "",
 "| mode | target | elapsed min | median | max | median - target | client round trip (median) |",
 "|---|---|---|---|---|---|---|",
 (["blocking", "async"][] as $m | .[$m] |
  "| \($m) | \(.target_ms) +- \(.tolerance_ms) ms | \(.elapsed_ms.min) | \(.elapsed_ms.median) | \(.elapsed_ms.max) | \(.over_target_ms.median | r1) ms | \(.client_ms.median | r1) ms |"),
 "",
 "Median step timelines (ms since arrival): " +
 ([(["blocking", "async"][] as $m | "\($m): " +
   ([.[$m].steps_median | to_entries[] | "\(.key) \(.value.start_ms | r1)-\(.value.end_ms | r1)"] | join(", ")))] | join("; ")) + ".",
 ""),
(.scenarios.S2 // empty |
 "## S2: concurrency sweep at scale \(.scale)",
 "",
 "Each run: a fresh server with `--workers \(.workers) --db-pool \(.db_pool)`, a warm-up, then wrk for \(.duration_s) s. Sequential \(.sequential_ms) ms, critical path \(.critical_path_ms) ms, brew \(.brew_ms) ms. Bounds: blocking = \(.bounds.blocking); async = \(.bounds.async). Steady state = \(.steady_state).",
 "",
 "| mode | connections | bound/s | wrk orders/s | steady orders/s | of bound | p50 ms | p99 ms | errors | other load (CPUs) |",
 "|---|---|---|---|---|---|---|---|---|---|",
 (.runs | sort_by(.mode, .connections)[] |
  "| \(.mode) | \(.connections) | \(.bound_rps | r1) | \(.wrk.rps) | \(.steady_rps | r1) | \(.of_bound | pct) | \(.wrk.p50_ms) | \(.wrk.p99_ms) | \(.wrk.non2xx + .wrk.connect_errors + .wrk.read_errors + .wrk.write_errors + .wrk.timeouts + .steady.failed) | \(.cpu.other_cpus) |"),
 "",
 "At \(.ratio_at_top.connections) connections async/blocking = \(.ratio_at_top.ratio * 100 | round / 100)x (bound \(.ratio_at_top.bound_ratio * 100 | round / 100)x).",
 "",
 "![S2 throughput](s2-throughput.svg)", "", "![S2 p99 latency](s2-p99.svg)", ""),
(.scenarios.S3 // empty |
 "## S3: the service'"'"'s own cost at scale 0",
 "",
 "| mode | connections | orders/s | server CPU us/order | user | sys | schedstat us/order | context switches/order (vol/invol) | kitchen us/order | PostgreSQL us/order | other load (CPUs) |",
 "|---|---|---|---|---|---|---|---|---|---|---|",
 (.runs[] |
  "| \(.mode) | \(.connections) | \(.orders_per_s) | \(.server_us_per_order | r1) | \(.server_user_us_per_order | r1) | \(.server_sys_us_per_order | r1) | \(.server_schedstat_us_per_order | r1) | \(.server_context_switches_per_order.voluntary | r1)/\(.server_context_switches_per_order.involuntary | r1) | \(.kitchen_us_per_order | r1) | \(.db_us_per_order // null | if . == null then "-" else r1 end) | \(.cpu.other_cpus) |"),
 "",
 "wrk: `\(.runs[0].wrk_command)`; server `\(.runs[0].server_args | join(" "))`.",
 ""),
(.scenarios.S4 // empty |
 "## S4: \(.orders) async orders in flight at once at scale 1",
 "",
 "| | |", "|---|---|",
 "| answered 200 | \(.client.ok) of \(.orders) (client exit \(.client_exit)) |",
 "| most in flight at once (rows running / client connections) | \(.in_flight.max_running_rows) / \(.in_flight.max_client_connections) |",
 "| server threads before / max during / after | \(.threads.before) / \(.threads.max_during) / \(.threads.after) |",
 "| server VmRSS before, VmHWM after | \(.memory_kb.rss_before) kB, \(.memory_kb.hwm_after) kB |",
 "| memory per in-flight order | \(.memory_kb.per_in_flight_order | r1) KB |",
 "| batch (all answered) | \(.batch_s | r1) s (lower bound with \(.db_pool) pool connections: \(.batch_lower_bound_s) s) |",
 "| latency p50 / p99 / max | \(.client.latency_ms.p50 | r0) / \(.client.latency_ms.p99 | r0) / \(.client.latency_ms.max | r0) ms |",
 "| most server fds | \(.in_flight.max_fds) (kitchen connections bounded at \(.kitchen_connections_bound)) |",
 "| other load (CPUs) | \(.cpu.other_cpus) |",
 "",
 "Server `\(.server_args | join(" "))`; client `\(.client_command)`.",
 "",
 "![S4 timeline](s4-timeline.svg)",
 ""),
(.scenarios.S5 // empty |
 "## S5: latency against arrival rate, open loop, scale \(.scale)",
 "",
 "Orders sent at fixed intended times for \(.duration_s) s per rate (`\(.command)`), latency from each intended send time (coordinated omission corrected), percentiles from a log-linear histogram; workers = db pool = \(.db_pool). Capacity from the recipe: blocking \(.capacity.blocking | r1) orders/s (workers / sequential), async \(.capacity.async | r1) orders/s (min(connections / critical path, brews / brew), brews = the connections brews may hold (/readyz db_pool.brews)).",
 "",
 "| mode | rate/s | sent | ok | p50 ms | p99 ms | p99.9 ms | max ms | server p50 ms |",
 "|---|---|---|---|---|---|---|---|---|",
 (.runs[] | "| \(.mode) | \(.rate | r1) | \(.sent) | \(.ok) | \(.latency_ms.p50 | r1) | \(.latency_ms.p99 | r1) | \(.latency_ms["p99.9"] | r1) | \(.latency_ms.max | r1) | \(.server_ms.p50 | r1) |"),
 "",
 "Server `\(.server_args | join(" "))`. Load average before / after: \(.loadavg.before) / \(.loadavg.after); other work on the machine during the runs: \(.cpu.other_cpus) CPUs (of \(.cpu.machine_cpus) busy).",
 "",
 "![S5 latency against rate](s5-latency.svg)",
 ""),
"## Settings",
"",
"```",
(.settings | to_entries[] | "\(.key)=\(.value | if type == "array" then join(" ") else tostring end)"),
"```"
' "$1"
