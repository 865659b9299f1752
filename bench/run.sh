#!/usr/bin/env bash
# Runs every benchmark under bench/ in one go, against one atp-server binary
# built here (or ATP_SERVER_BIN):
#   1. npm ci in bench/monday and bench/monday/reference (skipped when
#      node_modules is newer than the lockfile);
#   2. bench/monday/bench.mjs: the published client against atp-server and
#      against the reference @mondaydotcomorg/atp-server 0.19.17, workloads
#      (a) (b) (c), side by side;
#   3. bench/run-loadgen.sh: atp-server's own capacity with the Go load
#      generator at 16, 32 and 64 workers;
#   4. the in-process Go benchmarks of bench/inproc (server-side time of one
#      execution, no network).
# Every table is printed and collected in bench/results/run-<time>.md. Each
# step starts its own servers on loopback ports and stops them, also on
# failure and on Ctrl-C.
#
#   bench/run.sh                      # from the repository root
#   BENCH_WAIT_QUIET=600 bench/run.sh # first wait up to 10 min for an idle machine
#
# Needs Go, Node 20+ with npm, curl, and a C++ toolchain (g++, make,
# python3) for the reference's isolated-vm, which npm ci compiles.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/atp-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM HUP

log() { echo "run.sh: $*" >&2; }

# busy_percent samples /proc/stat for a second: the share of all CPUs that
# was busy.
busy_percent() {
	local a b
	a=$(awk 'NR == 1 { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
	sleep 1
	b=$(awk 'NR == 1 { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[2] - x[2]; print (t > 0 ? int(100 * (y[1] - x[1]) / t) : 0) }'
}

# Other load on the machine falsifies every figure here. With
# BENCH_WAIT_QUIET=<seconds>, wait until it has been under 10% busy for 5
# seconds in a row (or give up after that long and go on, saying so).
if [[ ${BENCH_WAIT_QUIET:-0} -gt 0 ]]; then
	deadline=$((SECONDS + BENCH_WAIT_QUIET))
	quiet=0
	while ((quiet < 5)); do
		if ((SECONDS > deadline)); then
			log "the machine did not become idle within ${BENCH_WAIT_QUIET}s: measuring anyway (see the other-processes columns)"
			break
		fi
		if (($(busy_percent) < 10)); then quiet=$((quiet + 1)); else quiet=0; fi
	done
fi
log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

bin=${ATP_SERVER_BIN:-}
if [[ -z $bin ]]; then
	log "go build ./cmd/atp-server (CGO_ENABLED=0 -trimpath, as make build)"
	CGO_ENABLED=0 go build -trimpath -o "$work/atp-server" ./cmd/atp-server
	bin=$work/atp-server
fi
ATP_SERVER_BIN=$(realpath "$bin")
export ATP_SERVER_BIN

for dir in bench/monday bench/monday/reference; do
	if [[ ! $dir/node_modules/.package-lock.json -nt $dir/package-lock.json ]]; then
		log "npm ci in $dir"
		(cd "$dir" && npm ci --no-audit --no-fund)
	fi
done

stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
mkdir -p bench/results
out=bench/results/run-$stamp.md
BENCH_OUT=$work/monday.md node bench/monday/bench.mjs
BENCH_OUT=$work/loadgen.md bench/run-loadgen.sh
{
	cat "$work/monday.md"
	echo
	cat "$work/loadgen.md"
	echo
	echo "### In-process Go benchmarks (bench/inproc)"
	echo
	echo '```'
	go test -run '^$' -bench MondayExecute -benchmem ./bench/inproc
	echo '```'
	echo
	echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out"
cat "$out"
log "written to $out"
