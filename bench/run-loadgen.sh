#!/usr/bin/env bash
# The server's own capacity on the monday surface, with no Node client in
# the loop. It:
#   1. builds atp-server (or takes ATP_SERVER_BIN) and bench/loadgen;
#   2. starts atp-server on a free loopback port with a fresh embedded
#      database in a temp dir, at its default log level (info: one access
#      log line per request, written to a file);
#   3. provisions through the admin API the toolkit `math` (js tool `add`)
#      and LOADGEN_KEYS client keys (default 8; one key may run only 16
#      executions at once);
#   4. runs the load generator at each concurrency of LOADGEN_C
#      (default "16 32 64") for LOADGEN_DURATION (default 10s) after a 2 s
#      warm-up; each execution runs `api.math.add({a: 1, b: 2})`;
#   5. prints a markdown table (executions/s, p50/p90/p99, errors, and the
#      CPU the server, the load generator and every other process of the
#      machine used meanwhile: other load disturbs the figures), writes it to
#      bench/results/loadgen-<time>.md (or BENCH_OUT), and stops the server,
#      also on failure and on Ctrl-C.
#
#   bench/run-loadgen.sh                                 # from the repository root
#   LOADGEN_C="32" LOADGEN_DURATION=30s bench/run-loadgen.sh
#   ATP_SERVER_BIN=/path/to/atp-server BENCH_COMMIT=abc1234 bench/run-loadgen.sh
#   GOGC=100 bench/run-loadgen.sh    # GOGC and GOMEMLIMIT, when set, reach the server
#
# Needs Go and curl. Talks only to 127.0.0.1. Exit status non-zero when a
# step fails or any execution errs.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/atp-bench-loadgen-XXXXXX")
server_pid=""

cleanup() {
	local rc=$?
	if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		for _ in $(seq 100); do
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	if [[ $rc -ne 0 && -f $work/server.log ]]; then
		echo "---- atp-server log (last 40 lines) ----" >&2
		tail -n 40 "$work/server.log" >&2
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

log() { echo "run-loadgen: $*" >&2; }

concurrencies=${LOADGEN_C:-16 32 64}
duration=${LOADGEN_DURATION:-10s}
nkeys=${LOADGEN_KEYS:-8}
log_level=info # the default; "listening", which gives the port, is logged at info

# ---- build ----
bin=${ATP_SERVER_BIN:-}
if [[ -z $bin ]]; then
	log "go build ./cmd/atp-server (CGO_ENABLED=0 -trimpath, as make build)"
	CGO_ENABLED=0 go build -trimpath -o "$work/atp-server" ./cmd/atp-server
	bin=$work/atp-server
fi
go build -trimpath -o "$work/loadgen" ./bench/loadgen

# ---- start ----
admin_key="adm-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
env -i PATH="$PATH" HOME="${HOME:-$work}" \
	ATP_ADDR=127.0.0.1:0 ATP_DATA_DIR="$work/data" ATP_ADMIN_KEY="$admin_key" \
	ATP_LOG_FORMAT=json ATP_LOG_LEVEL="$log_level" \
	${GOGC:+GOGC="$GOGC"} ${GOMEMLIMIT:+GOMEMLIMIT="$GOMEMLIMIT"} \
	"$bin" >"$work/server.log" 2>&1 </dev/null &
server_pid=$!

addr=""
for _ in $(seq 600); do
	addr=$(sed -n 's/.*"msg":"listening".*"addr":"\([0-9.:]*\)".*/\1/p' "$work/server.log" | head -n 1)
	[[ -n $addr ]] && break
	kill -0 "$server_pid" 2>/dev/null || { log "atp-server exited before it listened"; exit 1; }
	sleep 0.1
done
[[ -n $addr ]] || { log "atp-server did not log \"listening\" within 60 s"; exit 1; }
origin="http://$addr"
curl -fsS --retry 50 --retry-delay 0 --retry-all-errors --max-time 2 "$origin/api/info" >/dev/null
log "atp-server at $origin (pid $server_pid)"

# ---- provision ----
admin() { # METHOD PATH BODY
	curl -fsS --max-time 10 -X "$1" "$origin/admin/v1$2" \
		-H "Authorization: Bearer $admin_key" -H 'Content-Type: application/json' --data "$3"
}
admin POST /toolkits '{"id":"math","name":"Math","description":"Arithmetic helpers","tools":[{"name":"add","description":"Add two numbers","input_schema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]},"executor":{"kind":"js","code":"return {sum: input.a + input.b};"}}]}' >/dev/null
keys=""
for i in $(seq "$nkeys"); do
	k=$(admin POST /api-keys "{\"name\":\"loadgen-$i\",\"kind\":\"client\"}" | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
	[[ -n $k ]] || { log "creating client key $i failed"; exit 1; }
	keys+="${keys:+,}$k"
done

# ---- measure ----
cpu_ticks() { # utime+stime of a pid, in clock ticks
	awk '{print $14 + $15}' "/proc/$1/stat"
}
children_cpu() { # user+sys seconds of this shell's finished children (the loadgen runs)
	times >"$work/times" # in this shell, not in a $(…) subshell, whose children are its own
	awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$work/times"
}
machine_busy() { # CPU ticks all processes used so far (all but idle and iowait)
	awk 'NR == 1 { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}
hz=$(getconf CLK_TCK)
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
commit=${BENCH_COMMIT:-}
if [[ -z $commit ]]; then
	commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
	if [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then commit+=" (with uncommitted changes)"; fi
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

table="| workers | keys | executions/s | p50 ms | p90 ms | p99 ms | errors | CPU cores: server | loadgen | other processes |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
failed=0
for c in $concurrencies; do
	s0=$(cpu_ticks "$server_pid")
	m0=$(machine_busy)
	children_cpu >"$work/l0"
	t0=$(date +%s.%N)
	out=$("$work/loadgen" -url "$origin" -key "$keys" -c "$c" -d "$duration" -json)
	t1=$(date +%s.%N)
	children_cpu >"$work/l1"
	s1=$(cpu_ticks "$server_pid")
	m1=$(machine_busy)
	# The loadgen's CPU includes its warm-up and set-up; so does the server's.
	row=$(awk -v s="$((s1 - s0))" -v m="$((m1 - m0))" -v hz="$hz" -v l0="$(cat "$work/l0")" -v l1="$(cat "$work/l1")" -v t0="$t0" -v t1="$t1" -v c="$c" -v k="$nkeys" -v j="$out" 'BEGIN {
		n = split(j, f, /[,{}]/)
		for (i = 1; i <= n; i++) { split(f[i], kv, /":/); gsub(/"/, "", kv[1]); if (!(kv[1] in v)) v[kv[1]] = kv[2] }
		errs = v["executions"] - v["ok"]
		wall = t1 - t0
		other = m / hz / wall - s / hz / wall - (l1 - l0) / wall
		if (other < 0) other = 0
		printf "| %d | %d | %.0f | %.2f | %.2f | %.2f | %d | %.2f | %.2f | %.2f |", c, k, v["executions_per_second"], v["p50_ms"], v["p90_ms"], v["p99_ms"], errs, s / hz / wall, (l1 - l0) / wall, other
	}')
	log "$row"
	if ! grep -q '"errors":{}' <<<"$out"; then
		failed=1
		log "errors at -c $c: $out"
	fi
	table+=$'\n'"$row"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

report="### atp-server capacity, Go load generator ($date)

Commit $commit; $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')); $(go version | sed 's/^go version //').
Each execution: \`api.math.add({a: 1, b: 2})\` (a js tool), over POST /api/execute with a session (X-Client-ID + bearer), keep-alive.
$duration per row after a 2 s warm-up; server log level $log_level; load average (1/5/15 min) before: $load_before; after: $load_after.

$table
"
out_file=${BENCH_OUT:-$repo/bench/results/loadgen-${date//:/}.md}
mkdir -p "$(dirname "$out_file")"
printf '%s' "$report" >"$out_file"
printf '%s' "$report"
log "written to $out_file"
exit "$failed"
