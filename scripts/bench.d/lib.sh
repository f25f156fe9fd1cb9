# lib.sh: shared helpers of scripts/bench (sourced, never run, after
# scripts/lib.sh, whose start_listening, wait_ready, stop_pid and
# stop_started it builds on).
#
# Owns the processes it starts (kitchen, servers, load generators), each
# tracked by PID (LIB_PIDS) and stopped by PID; reads /proc for CPU, memory
# and thread counts; talks to PostgreSQL through psql. Every figure it hands
# back is read from a process or a tool, never computed from what it should
# be.

say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

now() { date +%s.%N; }

# JSON string of $1 (jq does the escaping).
jstr() { jq -Rn --arg s "$1" '$s'; }

# Runs psql on the bench database, one value per line, no decoration.
sql() { psql -qtAX -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "$1"; }

# start_proc NAME CMD...: start_listening in $RAW (LIB_START_S 10 s);
# sets STARTED_PID and STARTED_PORT, or dies.
start_proc() {
    start_listening "$1" "$RAW" "${@:2}" || die "$1 did not start"
}

# stop_proc PID [TIMEOUT_S]: stop_pid with TIMEOUT_S (default 120: the
# server drains every order in flight first); prints the seconds it took.
stop_proc() {
    local t0
    t0=$(now)
    stop_pid "$1" "${2:-120}" >&2
    awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f\n", b - a }'
}

# The EXIT trap: every process still running, drains bounded at 120 s.
stop_all() { stop_started 120; }

# ---- the stack ------------------------------------------------------------

# start_kitchen: one kitchen for every scenario. Sets KITCHEN_PID, KITCHEN_URL.
start_kitchen() {
    KITCHEN_ARGS=(--port 0 --max-connections "$KITCHEN_MAX_CONN")
    start_proc kitchen "$BIN/coffee-kitchen" "${KITCHEN_ARGS[@]}"
    KITCHEN_PID=$STARTED_PID
    KITCHEN_URL="http://127.0.0.1:$STARTED_PORT"
}

# start_server NAME ARGS...: a coffee-server on a free port with ARGS.
# Waits until /readyz says the whole database pool is connected. Sets
# SERVER_PID, SERVER_URL and SERVER_ARGS.
start_server() {
    local name=$1; shift
    # The bench stops every server with SIGTERM and counts every order it
    # took: the drain must let them all finish (the default 10 s would
    # cancel blocking orders still queued at 1024 connections).
    # shellcheck disable=SC2086 # SERVER_EXTRA_ARGS: words, from bench-ab's A_/B_SERVER_ARGS
    SERVER_ARGS=(--port 0 --kitchen-url "$KITCHEN_URL" --drain-timeout-ms 600000 "$@" ${SERVER_EXTRA_ARGS:-})
    start_proc "$name" "$BIN/coffee-server" "${SERVER_ARGS[@]}"
    SERVER_PID=$STARTED_PID
    SERVER_URL="http://127.0.0.1:$STARTED_PORT"
    wait_ready "$SERVER_URL" 30 '.status == "ready" and .db_pool.connected == .db_pool.size' || die "$name is not ready"
    workflow_facts
}

# workflow_facts: the running server's GET /workflow (the step and mode
# tables at scale 1, the one copy of the recipe's figures) into
# $RAW/workflow.json; sets WF_CRIT_MS (critical path), WF_SEQ_MS (all steps
# in a row) and WF_BREW_MS (the SQL steps: what holds a pool connection).
# A build older than /workflow (bench-ab's A, say) keeps the facts of an
# earlier server, or, with BENCH_FACTS_OPTIONAL=1 (bench-ab, whose S3 needs
# none), goes without; otherwise it is an error.
workflow_facts() {
    if ! curl -fsS --max-time 5 "$SERVER_URL/workflow" >"$RAW/workflow.json.new" 2>/dev/null; then
        rm -f "$RAW/workflow.json.new"
        [ -n "${WF_CRIT_MS:-}" ] && return 0
        [ "${BENCH_FACTS_OPTIONAL:-0}" = 1 ] && { say "$SERVER_URL has no /workflow (an older build): no recipe figures"; return 0; }
        die "GET $SERVER_URL/workflow failed"
    fi
    mv "$RAW/workflow.json.new" "$RAW/workflow.json"
    WF_CRIT_MS=$(jq -e '.critical_path_ms' "$RAW/workflow.json") || die "no critical_path_ms in /workflow"
    WF_SEQ_MS=$(jq -e '.sequential_ms' "$RAW/workflow.json") || die "no sequential_ms in /workflow"
    WF_BREW_MS=$(jq -e '[.steps[] | select(.io == "sql") | .planned_ms] | add' "$RAW/workflow.json") ||
        die "no SQL step in /workflow"
}

# Server arguments as a JSON array (for the record).
args_json() { printf '%s\n' "$@" | jq -Rcn '[inputs]'; }

# ---- /proc readers ------------------------------------------------------------

# utime stime (clock ticks) of a whole process, all threads.
proc_ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }

# Sum of the threads' run time in ns (schedstat: exact, not sampled).
proc_runtime_ns() {
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

# A field of /proc/PID/status as a number (kB for Vm*).
proc_status() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# voluntary+nonvoluntary context switches of a process (all threads).
proc_ctxsw() {
    cat /proc/"$1"/task/*/status 2>/dev/null |
        awk '/^voluntary_ctxt_switches/ { v += $2 } /^nonvoluntary_ctxt_switches/ { n += $2 } END { print v, n }'
}

# ---- what else ran on the machine -------------------------------------------

# cpu_snapshot FILE: every process's pid, ppid and utime+stime ticks, plus
# the machine's busy ticks (all CPUs) on the first line.
cpu_snapshot() {
    {
        awk '/^cpu / { print "machine", 0, $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
        # comm may hold spaces: split after its closing parenthesis.
        for f in /proc/[0-9]*/stat; do
            cat "$f" 2>/dev/null || true # it may have exited since the glob
            echo
        done | awk 'NF { s = $0; sub(/^.*\) /, "", s); split(s, a, " "); pid = $1 + 0;
                        print pid, a[2], a[12] + a[13] }'
    } >"$1"
}

# cpu_split BEFORE AFTER SECONDS OUR_PID...: CPU used during the window, in
# CPUs (1.0 = one core busy), as JSON: the machine's total, our processes
# (the given PIDs, their children, and the PostgreSQL cluster), and the
# rest, i.e. other work on the same machine that competed with the run.
cpu_split() {
    local before=$1 after=$2 secs=$3; shift 3
    awk -v secs="$secs" -v hz="$(getconf CLK_TCK)" -v ours="$* $PG_POSTMASTER_PID" '
        BEGIN { n = split(ours, o, " "); for (i = 1; i <= n; i++) mine[o[i]] = 1 }
        FNR == NR { if ($1 == "machine") m0 = $3; else t0[$1] = $3; next }
        $1 == "machine" { m1 = $3; next }
        { ppid[$1] = $2; t1[$1] = $3 }
        END {
            for (p in t1) {
                d = t1[p] - (p in t0 ? t0[p] : 0)
                if (d < 0) d = 0
                q = p; is = 0
                for (k = 0; k < 4 && q > 1; k++) { if (q in mine) { is = 1; break } q = ppid[q] }
                if (is) us += d; else them += d
            }
            printf "{\"machine_cpus\":%.3f,\"stack_cpus\":%.3f,\"other_cpus\":%.3f}\n",
                   (m1 - m0) / hz / secs, us / hz / secs, them / hz / secs
        }' "$before" "$after"
}

# pg_ticks BEFORE AFTER: utime+stime ticks the PostgreSQL cluster (the
# postmaster and every process under it) used between two cpu_snapshots.
# A backend that exited during the window is not counted: the pools keep
# theirs open for the whole run.
pg_ticks() {
    awk -v pm="$PG_POSTMASTER_PID" '
        FNR == NR { if ($1 != "machine") t0[$1] = $3; next }
        $1 == "machine" { next }
        { ppid[$1] = $2; t1[$1] = $3 }
        END {
            for (p in t1) {
                q = p; is = 0
                for (k = 0; k < 4 && q > 1; k++) { if (q == pm) { is = 1; break } q = ppid[q] }
                if (is) { d = t1[p] - (p in t0 ? t0[p] : 0); if (d > 0) s += d }
            }
            print s + 0
        }' "$1" "$2"
}

# ---- load generators ------------------------------------------------------------

# wrk_args MODE SCALE CONNS DURATION_S: sets WRK_CMD, the wrk command line
# with the project's Lua script (in this shell, so that it can be recorded;
# the bench runs from the top of the tree).
wrk_args() {
    local mode=$1 scale=$2 conns=$3 secs=$4 threads=2
    [ "$conns" -lt "$threads" ] && threads=$conns
    WRK_CMD=(wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout "${WRK_TIMEOUT_S}s"
             -s client/wrk/make-coffee.lua "$SERVER_URL" -- "$mode" "$scale")
}

# run_wrk OUTFILE: runs WRK_CMD; prints its wrk-result line as JSON.
run_wrk() {
    local out=$1
    "${WRK_CMD[@]}" >"$out" 2>&1 || die "wrk failed: $(tail -n 3 "$out")"
    grep '^wrk-result ' "$out" | tail -n 1 | cut -d' ' -f2- | tr ' ' '\n' |
        jq -Rn '[inputs | select(length > 0) | split("=") | {(.[0]): (.[1] | tonumber? // .)}] | add'
}

# warm_up MODE ORDERS CONCURRENCY: orders at scale 0, so that every worker's
# and every pool connection's backend has run the brew once (PL/pgSQL
# compiles a function on its first call in a backend) and the kitchen
# connections are open. Not measured.
warm_up() {
    "$BIN/coffee-client" --url "$SERVER_URL" --mode "$1" --orders "$2" --concurrency "$3" --scale 0 \
        --json >"$RAW/warmup.json" 2>>"$RAW/warmup.log" || die "warm-up of $1 failed (see $RAW/warmup.log)"
}

max_order_id() { sql "SELECT coalesce(max(id), 0) FROM orders"; }
