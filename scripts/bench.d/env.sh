# env.sh: what the figures were measured on (sourced by scripts/bench).
# Prints one JSON object: machine, kernel, limits, library and tool
# versions, the PostgreSQL settings (pg_settings_json), the build and the
# git commit. Everything is read, not assumed.

pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo unknown; }
pcver() { pkg-config --modversion "$1" 2>/dev/null || echo unknown; }

bench_env_json() {
    local cpu cores threads_per_core mem_kb hyper pgver commit dirty branch cc build_type
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    cores=$(nproc)
    threads_per_core=$(lscpu 2>/dev/null | awk -F': *' '/^Thread\(s\) per core/ { print $2 }')
    hyper=$(lscpu 2>/dev/null | awk -F': *' '/^Hypervisor vendor/ { print $2 }')
    mem_kb=$(awk '/^MemTotal/ { print $2 }' /proc/meminfo)
    pgver=$(sql "SHOW server_version")
    commit=$(git -C "$TOP" rev-parse HEAD)
    branch=$(git -C "$TOP" rev-parse --abbrev-ref HEAD)
    dirty=false
    [ -n "$(git -C "$TOP" status --porcelain --untracked-files=no)" ] && dirty=true
    cc=$(awk -F= '/^CMAKE_C_COMPILER:/ { print $2 }' "$BIN/CMakeCache.txt")
    build_type=$(awk -F= '/^CMAKE_BUILD_TYPE:/ { print $2 }' "$BIN/CMakeCache.txt")
    jq -n \
        --arg cpu "$cpu" --argjson cores "$cores" --arg tpc "${threads_per_core:-?}" --arg hyper "${hyper:-none}" \
        --argjson mem_kb "$mem_kb" --arg kernel "$(uname -r)" --arg os "$(. /etc/os-release && echo "$PRETTY_NAME")" \
        --arg nofile_soft "$(ulimit -Sn)" --arg nofile_hard "$(ulimit -Hn)" \
        --arg somaxconn "$(cat /proc/sys/net/core/somaxconn)" \
        --arg ports "$(tr '\t' ' ' </proc/sys/net/ipv4/ip_local_port_range)" \
        --arg loadavg "$(cut -d' ' -f1-3 /proc/loadavg)" \
        --arg libcurl "$(pkgver libcurl4) (pkg-config $(pcver libcurl))" \
        --arg libpq "$(pkgver libpq5) (pkg-config $(pcver libpq))" \
        --arg mhd "$(pkgver libmicrohttpd12) (pkg-config $(pcver libmicrohttpd))" \
        --arg jansson "$(pkgver libjansson4) (pkg-config $(pcver jansson))" \
        --arg pg "$pgver" --arg pgpkg "$(pkgver postgresql-15)" \
        --arg wrk "$({ wrk -v 2>&1 || true; } | head -n 1 | cut -d' ' -f1-2)" \
        --arg gnuplot "$(gnuplot --version 2>/dev/null || echo none)" \
        --arg cc "$cc $("$cc" -dumpfullversion 2>/dev/null)" --arg build_type "$build_type" \
        --arg commit "$commit" --arg branch "$branch" --argjson dirty "$dirty" \
        --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson pgset "$(pg_settings_json)" \
        '{date: $date,
          machine: {cpu: $cpu, cpus: $cores, threads_per_core: $tpc, hypervisor: $hyper,
                    ram_gib: (($mem_kb / 1048576 * 10 | round) / 10), kernel: $kernel, os: $os,
                    loadavg_at_start: $loadavg},
          limits: {nofile_soft: $nofile_soft, nofile_hard: $nofile_hard, somaxconn: $somaxconn,
                   ephemeral_ports: $ports},
          versions: {libcurl: $libcurl, libpq: $libpq, libmicrohttpd: $mhd, jansson: $jansson,
                     postgresql_server: ($pg + " (package " + $pgpkg + ")"), wrk: $wrk, gnuplot: $gnuplot},
          postgresql: $pgset,
          build: {compiler: $cc, build_type: $build_type},
          git: {commit: $commit, branch: $branch, dirty: $dirty}}'
}
