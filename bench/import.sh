#!/usr/bin/env bash
# Import benchmark (DESIGN.md section 8): generates a gzip .ravendbdump of N
# LastFm documents (~1 KB of JSON each) and, in the same run on the same
# file, measures
#   - `gzip -dc FILE > /dev/null` wall time (the baseline),
#   - `magpie import` into a fresh encrypted database: wall time, peak RSS,
#     docs/s and the ratio import / gzip -dc,
#   - point-get latency: `magpie docs get` on random ids (a whole CLI call:
#     process start + opening the store + one get) and, in process,
#     bench/pointget (p50/p99 of 100k random db.Get),
# and repeats the import at 2N (DOUBLE=1, the default) to show that peak RSS
# stays flat when the dump doubles.
#
# Targets: import <= 1.5x gzip -dc, >= 80,000 docs/s, peak RSS <= 256 MiB
# and flat (RSS(2N) <= FLAT_TOL x RSS(N)).
#
# Usage: bench/import.sh                  # N=1000000, DOUBLE=1
#        N=20000 bench/import.sh          # quick check
# Env:   N (1000000), DOUBLE (1), CLI_GETS (200), GETS (100000),
#        FLAT_TOL (1.15), KEEP (0: remove the temp dir at the end),
#        TMPDIR (where dumps and data dirs go; needs ~4 GB per million docs).
# Output: a markdown summary on stdout and in bench/out/import-latest.md.
set -euo pipefail

N=${N:-1000000}
DOUBLE=${DOUBLE:-1}
CLI_GETS=${CLI_GETS:-200}
GETS=${GETS:-100000}
FLAT_TOL=${FLAT_TOL:-1.15}
KEEP=${KEEP:-0}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR="$REPO/bench/out"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/magpie-bench.XXXXXX")
cleanup() {
	if [[ "$KEEP" == 1 ]]; then
		echo "kept $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

if [[ ! -x /usr/bin/time ]]; then
	log "installing GNU time (/usr/bin/time is missing)"
	SUDO=""
	[[ $(id -u) -ne 0 ]] && SUDO=sudo
	$SUDO apt-get install -y time >/dev/null
fi

log "building into $WORK/bin"
mkdir -p "$WORK/bin"
(
	cd "$REPO"
	go build -o "$WORK/bin/magpie" ./cmd/magpie
	go build -o "$WORK/bin/gendump" ./bench/gendump
	go build -o "$WORK/bin/pointget" ./bench/pointget
)
M="$WORK/bin/magpie"

now_ns() { date +%s%N; }
# secs START_NS END_NS
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
# calc EXPR: floating-point arithmetic
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }
# check COND: PASS or MISS
check() { awk "BEGIN { exit !($1) }" && echo PASS || echo MISS; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
human() { awk -v b="$1" 'BEGIN { if (b >= 1073741824) printf "%.2f GiB", b / 1073741824; else printf "%.1f MiB", b / 1048576 }'; }

# run_size SIZE: generates, baselines and imports SIZE documents; sets
# variables suffixed with the size's label (passed as $2).
run_size() {
	local n=$1 tag=$2
	local dump="$WORK/lastfm-$n.ravendbdump"
	local data="$WORK/data-$n"
	local key="$WORK/data-$n.master.key"

	log "[$tag] generating $n documents"
	local t0 t1
	t0=$(now_ns)
	"$WORK/bin/gendump" -n "$n" -o "$dump" 2>"$WORK/gendump-$n.log"
	t1=$(now_ns)
	cat "$WORK/gendump-$n.log" >&2
	local dump_size json_size
	dump_size=$(stat -c %s "$dump")
	json_size=$(sed -n 's/.* docs, \([0-9]*\) bytes of JSON.*/\1/p' "$WORK/gendump-$n.log")
	log "[$tag] generated in $(secs "$t0" "$t1") s"

	# Baseline: gzip -dc of the same file, now in the page cache as the
	# import's input will be. Run twice, keep the faster.
	local g best_g=""
	for _ in 1 2; do
		t0=$(now_ns)
		gzip -dc "$dump" >/dev/null
		t1=$(now_ns)
		g=$(secs "$t0" "$t1")
		if [[ -z "$best_g" ]] || awk -v a="$g" -v b="$best_g" 'BEGIN { exit !(a < b) }'; then best_g=$g; fi
	done
	log "[$tag] gzip -dc: $best_g s"

	"$M" --data "$data" --master-key "$key" db create bench --encrypted --json >"$WORK/create-$n.json" 2>/dev/null
	local load
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	log "[$tag] importing into an encrypted database (load average $load)"
	t0=$(now_ns)
	/usr/bin/time -f '%e %M %U %S' -o "$WORK/time-$n.txt" \
		"$M" --data "$data" --master-key "$key" import bench "$dump" --json >"$WORK/import-$n.json"
	t1=$(now_ns)
	local imp rss_kb cpu docs
	imp=$(secs "$t0" "$t1")
	rss_kb=$(awk 'END { print $2 }' "$WORK/time-$n.txt")
	cpu=$(awk 'END { printf "%.1f", $3 + $4 }' "$WORK/time-$n.txt")
	docs=$(sed -n 's/.*"Documents": *\([0-9]*\).*/\1/p' "$WORK/import-$n.json")
	if [[ "$docs" != "$n" ]]; then
		echo "import reported $docs documents, expected $n" >&2
		cat "$WORK/import-$n.json" >&2
		exit 1
	fi
	local count
	count=$("$M" --data "$data" --master-key "$key" stats bench --json | sed -n 's/.*"CountOfDocuments": *\([0-9]*\).*/\1/p')
	if [[ "$count" != "$n" ]]; then
		echo "stats report $count documents, expected $n" >&2
		exit 1
	fi
	local db_size
	db_size=$(du -sb "$data" | awk '{ print $1 }')
	log "[$tag] import: $imp s (CPU $cpu s), peak RSS $(mib "$rss_kb") MiB, store $(human "$db_size")"

	printf -v "DUMP_SIZE_$tag" '%s' "$dump_size"
	printf -v "JSON_SIZE_$tag" '%s' "$json_size"
	printf -v "GZIP_S_$tag" '%s' "$best_g"
	printf -v "IMPORT_S_$tag" '%s' "$imp"
	printf -v "RSS_KB_$tag" '%s' "$rss_kb"
	printf -v "CPU_S_$tag" '%s' "$cpu"
	printf -v "LOAD_$tag" '%s' "$load"
	printf -v "DB_SIZE_$tag" '%s' "$db_size"
	printf -v "DATA_$tag" '%s' "$data"
	printf -v "KEY_$tag" '%s' "$key"
}

run_size "$N" A
if [[ "$DOUBLE" == 1 ]]; then
	# The 2N dump is not needed for point gets: free the disk first.
	rm -f "$WORK/lastfm-$N.ravendbdump"
	run_size $((2 * N)) B
	rm -f "$WORK/lastfm-$((2 * N)).ravendbdump"
fi

# Point gets on the N database: CLI calls, then in process.
log "point gets: $CLI_GETS CLI calls of magpie docs get"
: >"$WORK/cli-gets.txt"
for ((i = 0; i < CLI_GETS; i++)); do
	id="lastfm/$((1 + (RANDOM * 32768 + RANDOM) % N))"
	t0=$(now_ns)
	"$M" --data "$DATA_A" --master-key "$KEY_A" docs get bench "$id" >"$WORK/doc.json"
	t1=$(now_ns)
	if ! grep -q "\"@id\":\"$id\"" "$WORK/doc.json"; then
		echo "docs get $id returned something else:" >&2
		head -c 500 "$WORK/doc.json" >&2
		exit 1
	fi
	echo $(((t1 - t0) / 1000)) >>"$WORK/cli-gets.txt"
done
CLI_P50_MS=$(sort -n "$WORK/cli-gets.txt" | awk '{ a[NR] = $1 } END { printf "%.1f", a[int((NR + 1) / 2)] / 1000 }')
log "CLI docs get median: $CLI_P50_MS ms"

log "point gets: $GETS in process (bench/pointget)"
"$WORK/bin/pointget" -data "$DATA_A" -master-key "$KEY_A" -db bench -gets "$GETS" | tee "$WORK/pointget.txt" >&2
PG=$(grep '^pointget:' "$WORK/pointget.txt")
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$PG"; }
PG_P50=$(field p50_us)
PG_P99=$(field p99_us)
PG_OPEN=$(field open_ms)

# Summary.
RATIO_A=$(calc "$IMPORT_S_A / $GZIP_S_A")
DPS_A=$(awk -v n="$N" -v s="$IMPORT_S_A" 'BEGIN { printf "%.0f", n / s }')
RSS_A=$(mib "$RSS_KB_A")
MEM=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
REV=$(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo "no commit")

{
	echo "# magpie import benchmark"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- machine: $(nproc) CPUs ($CPU), $MEM RAM, $(uname -sr)"
	echo "- build: $(go version | awk '{ print $3 }'), magpie $REV"
	echo "- input: bench/gendump, LastFm documents of ~1 KB, gzip; imported into a fresh encrypted database with \`magpie import\`"
	echo "- load average before the N import: $LOAD_A (2 CPUs; other processes on the machine inflate wall times)"
	echo "- command: \`N=$N DOUBLE=$DOUBLE bench/import.sh\`"
	echo
	echo "| measure | N = $N | target | result |"
	echo "|---|---|---|---|"
	echo "| dump size (gzip / JSON) | $(human "$DUMP_SIZE_A") / $(human "$JSON_SIZE_A") | | |"
	echo "| \`gzip -dc\` (baseline) | ${GZIP_S_A} s | | |"
	echo "| \`magpie import\` | ${IMPORT_S_A} s (CPU user+sys ${CPU_S_A} s) | | |"
	echo "| import / gzip -dc | ${RATIO_A}x | <= 1.5x | $(check "$RATIO_A <= 1.5") |"
	echo "| docs/s | $DPS_A | >= 80,000 | $(check "$DPS_A >= 80000") |"
	echo "| peak RSS of the import | $RSS_A MiB | <= 256 MiB | $(check "$RSS_A <= 256") |"
	echo "| store size on disk | $(human "$DB_SIZE_A") | | |"
	echo "| point get, in process (p50 / p99 of $GETS) | $PG_P50 / $PG_P99 µs | | |"
	echo "| point get, CLI \`docs get\` (median of $CLI_GETS, incl. process start + store open) | $CLI_P50_MS ms | | |"
	echo "| store open (in process) | $PG_OPEN ms | | |"
	if [[ "$DOUBLE" == 1 ]]; then
		N2=$((2 * N))
		RATIO_B=$(calc "$IMPORT_S_B / $GZIP_S_B")
		DPS_B=$(awk -v n="$N2" -v s="$IMPORT_S_B" 'BEGIN { printf "%.0f", n / s }')
		RSS_B=$(mib "$RSS_KB_B")
		GROWTH=$(calc "$RSS_KB_B / $RSS_KB_A")
		echo
		echo "| measure | N = $N | 2N = $N2 | target | result |"
		echo "|---|---|---|---|---|"
		echo "| dump size (gzip) | $(human "$DUMP_SIZE_A") | $(human "$DUMP_SIZE_B") | | |"
		echo "| \`gzip -dc\` | ${GZIP_S_A} s | ${GZIP_S_B} s | | |"
		echo "| \`magpie import\` | ${IMPORT_S_A} s | ${IMPORT_S_B} s | | |"
		echo "| import CPU (user+sys) | ${CPU_S_A} s | ${CPU_S_B} s | | |"
		echo "| load average before import | ${LOAD_A} | ${LOAD_B} | | |"
		echo "| import / gzip -dc | ${RATIO_A}x | ${RATIO_B}x | <= 1.5x | $(check "$RATIO_B <= 1.5") (2N) |"
		echo "| docs/s | $DPS_A | $DPS_B | >= 80,000 | $(check "$DPS_B >= 80000") (2N) |"
		echo "| peak RSS | $RSS_A MiB | $RSS_B MiB | <= 256 MiB | $(check "$RSS_B <= 256") (2N) |"
		echo "| RSS growth 2N / N | | ${GROWTH}x | flat (<= ${FLAT_TOL}x) | $(check "$GROWTH <= $FLAT_TOL") |"
		echo "| store size on disk | $(human "$DB_SIZE_A") | $(human "$DB_SIZE_B") | | |"
	fi
} >"$WORK/summary.md"

mkdir -p "$OUT_DIR"
cp "$WORK/summary.md" "$OUT_DIR/import-latest.md"
echo
cat "$WORK/summary.md"
echo
log "written to bench/out/import-latest.md"
