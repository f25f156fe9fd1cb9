# shellcheck shell=bash
# lib.sh: what the scripts share (sourced, never run): start a program and
# wait for its "listening on" line, wait for /readyz, stop a process by PID,
# pick a free port, re-exec under scripts/with-postgres.
#
# Every wait here has a deadline and fails clearly at it. Processes are only
# ever stopped by the PID this shell started (LIB_PIDS), never by name.
# Messages go to stderr, prefixed with $LIB_NAME (default: the script's name).
# Sourced by run, soak, chaos, bench (through bench.d/lib.sh), bench-ab,
# with-postgres and tests/compose-smoke.

LIB_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${LIB_NAME:=$(basename "$0")}"
LIB_PIDS=()
LIB_PORTS_TAKEN=" "

lib_say() { echo "$LIB_NAME: $*" >&2; }

# Milliseconds on the shell's clock (bash 5's EPOCHREALTIME, no fork).
lib_now_ms() {
    local t=${EPOCHREALTIME/[.,]/}
    echo $((t / 1000))
}

# start_listening NAME DIR CMD...: starts CMD in the background, stdout in
# DIR/NAME.out and stderr in DIR/NAME.log, and waits up to LIB_START_S
# seconds (default 10) for its "listening on http://HOST:PORT" line. Sets
# STARTED_PID, STARTED_PORT and STARTED_URL; the PID joins LIB_PIDS. If the
# program exits first or the deadline passes, says so with the end of its
# log, stops it (stop_pid) and returns 1.
start_listening() {
    local name=$1 dir=$2 deadline line
    shift 2
    "$@" >"$dir/$name.out" 2>"$dir/$name.log" &
    STARTED_PID=$!
    LIB_PIDS+=("$STARTED_PID")
    deadline=$(($(lib_now_ms) + ${LIB_START_S:-10} * 1000))
    while [ "$(lib_now_ms)" -lt "$deadline" ]; do
        line=$(grep -m 1 -o 'listening on http://[^ ]*:[0-9]*' "$dir/$name.out" 2>/dev/null || true)
        if [ -n "$line" ]; then
            STARTED_URL=${line#listening on }
            STARTED_PORT=${STARTED_URL##*:}
            return 0
        fi
        kill -0 "$STARTED_PID" 2>/dev/null || break
        sleep 0.05 # waiting for a process to start, bounded by the deadline
    done
    if kill -0 "$STARTED_PID" 2>/dev/null; then
        lib_say "$name did not say \"listening on\" within ${LIB_START_S:-10} s (log: $dir/$name.log):"
        stop_pid "$STARTED_PID" 5
    else
        lib_say "$name exited before it listened (log: $dir/$name.log):"
        wait "$STARTED_PID" 2>/dev/null || true
    fi
    tail -n 20 "$dir/$name.log" >&2
    return 1
}

# wait_ready URL [SECONDS] [JQ_FILTER]: polls URL/readyz (each try bounded
# by 2 s) until it answers 200 and, when JQ_FILTER is given, the filter
# holds on its JSON body; up to SECONDS (default 10). Returns 1 at the
# deadline, saying what the last answer was.
wait_ready() {
    local url=$1 secs=${2:-10} filter=${3:-} deadline body code
    deadline=$(($(lib_now_ms) + secs * 1000))
    for (( ; ; )); do
        body=$(curl -s --max-time 2 -w '\n%{http_code}' "$url/readyz" || true)
        code=${body##*$'\n'}
        body=${body%$'\n'*}
        if [ "$code" = 200 ] && { [ -z "$filter" ] || jq -e "$filter" >/dev/null 2>&1 <<<"$body"; }; then
            return 0
        fi
        [ "$(lib_now_ms)" -lt "$deadline" ] || break
        sleep 0.1 # waiting for readiness, bounded by the deadline
    done
    lib_say "$url/readyz not ready within $secs s: last answer ${code:-none} ${body:0:300}"
    return 1
}

# lib_reap PID DEADLINE_MS SECONDS: waits for PID (already sent SIGTERM)
# to exit until DEADLINE_MS on lib_now_ms's clock, then SIGKILLs it (and
# sets STOP_KILLED to 1); reaps it when it is this shell's child.
lib_reap() {
    local pid=$1 deadline=$2 secs=$3
    while kill -0 "$pid" 2>/dev/null && [ "$(lib_now_ms)" -lt "$deadline" ]; do
        sleep 0.1 # waiting for it to exit, bounded by the deadline
    done
    if kill -0 "$pid" 2>/dev/null; then
        lib_say "process $pid still running ${secs} s after SIGTERM: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        STOP_KILLED=1
    fi
    wait "$pid" 2>/dev/null || true
}

# stop_pid PID [SECONDS]: SIGTERM, waits up to SECONDS (default 10) for it to
# exit (coffee-server first answers every order in flight), then SIGKILL;
# reaps it when it is this shell's child. Sets STOP_KILLED to 1 when it
# needed SIGKILL, else 0. Always returns 0.
stop_pid() {
    local pid=$1 secs=${2:-10}
    STOP_KILLED=0
    kill -TERM "$pid" 2>/dev/null || true
    lib_reap "$pid" $(($(lib_now_ms) + secs * 1000)) "$secs"
}

# stop_started [SECONDS]: stops every process in LIB_PIDS at once (SIGTERM
# to all, so their drains overlap, then SIGKILL to those still running
# after SECONDS, default 10) and empties LIB_PIDS. For an EXIT trap.
stop_started() {
    local secs=${1:-10} p deadline
    STOP_KILLED=0
    [ ${#LIB_PIDS[@]} -gt 0 ] || return 0
    for p in "${LIB_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    deadline=$(($(lib_now_ms) + secs * 1000))
    for p in "${LIB_PIDS[@]}"; do lib_reap "$p" "$deadline" "$secs"; done
    LIB_PIDS=()
}

# free_port VAR: sets VAR to a TCP port nothing listens on at 127.0.0.1,
# from 20000 to 32767 (below Linux's ephemeral range, so no outgoing
# connection holds it), not handed out before by this shell. Another
# program may still take it before it is bound: callers that can, retry.
free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 12768))
        case "$LIB_PORTS_TAKEN" in *" $p "*) continue ;; esac
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            LIB_PORTS_TAKEN="$LIB_PORTS_TAKEN$p "
            printf -v "$1" '%s' "$p"
            return 0
        fi
    done
    lib_say "no free TCP port on 127.0.0.1"
    return 1
}

# reexec_with_postgres [--own] FLAG CMD...: unless the variable FLAG is set
# (this is the re-executed run), exports FLAG=1 and execs CMD under
# scripts/with-postgres, so that it has a DATABASE_URL (the caller's, or a
# throw-away cluster's). --own: always a throw-away cluster of its own
# (DATABASE_URL from the environment is dropped). Returns only in the
# re-executed run.
reexec_with_postgres() {
    local own=0 flag
    [ "$1" = --own ] && { own=1; shift; }
    flag=$1
    shift
    [ -z "${!flag:-}" ] || return 0
    export "$flag=1"
    [ $own = 0 ] || unset DATABASE_URL
    exec "$LIB_TOP/scripts/with-postgres" "$@"
}
