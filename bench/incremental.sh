#!/usr/bin/env bash
# Incremental backup, S3 destination and chain restore benchmark (issue 5,
# "Speed"). Generates a .ravendbdump of N LastFm documents (~1 KB of JSON
# each, ~1 GB at the default N) with bench/gendump, imports it into a fresh
# ENCRYPTED database and measures, on that database:
#
#   1. an incremental backup after 1% of the documents changed, against the
#      full backup of the same database: each run makes a full backup
#      (default database-mode encryption) into a fresh folder, changes 1%,
#      then runs `backup run --incremental` into that folder, then once more
#      with nothing changed (it must write no file: the fixed cost, for
#      reference). A change imports a gendump dump of N/100 documents whose
#      ids (-first) overwrite existing ones with new content (-seed); every
#      change takes the next 1% slice of the ids;
#   2. a full encrypted backup to an S3 server (versitygw, posix backend, on
#      the same local disk as the data: the difference is the S3 protocol and
#      the upload path, not a network) against the same backup to a local
#      folder, alternating the two (odd runs local first, even runs S3 first);
#      the last S3 backup is then checked with `backup verify URL`;
#   3. the restore of a chain of a full backup plus CHAIN (10) incrementals,
#      each made after a 1% change, against the restore of a single full
#      backup of the same final data, alternated, each into a fresh data dir;
#      document counts and three documents (first and last changed slice, one
#      never changed) are checked against the source database;
#   4. the peak RSS (/usr/bin/time %M) of every run.
#
# Every figure is the median of RUNS runs (part 1 runs full, change,
# incremental in that order: the chain needs it). The page cache is not
# dropped: both sides read warm data. magpie fsyncs its backup files and
# restored databases.
#
# Targets: incremental (1% changed) / full <= 0.03; peak RSS of every run <=
# 256 MiB. S3 / local and chain / single restore have no target: reported.
#
# Usage: bench/incremental.sh              # N=1000000, RUNS=3
#        N=20000 bench/incremental.sh      # quick check
# Env:   N (1000000; a multiple of 100 keeps every change exactly 1%), RUNS
#        (3), CHAIN (10: incrementals in the restored chain), KEEP (0: remove
#        the temp dir at the end), TMPDIR (where dumps, data dirs, backups and
#        the S3 server's folder go; ~3 GB per million docs).
# Needs versitygw on PATH or in $(go env GOPATH)/bin
# (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0) and curl.
# The pass/fail column judges wall-time medians; the CPU-time ratio beside
# each (user+sys, medians) is the check that is robust to other load.
# Output: a markdown summary on stdout and in bench/out/incremental-latest.md.
set -euo pipefail

N=${N:-1000000}
RUNS=${RUNS:-3}
CHAIN=${CHAIN:-10}
KEEP=${KEEP:-0}
P=$((N / 100))
if ((P < 1)); then
	echo "N must be at least 100" >&2
	exit 2
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR="$REPO/bench/out"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/magpie-incremental-bench.XXXXXX")
VGW_PID=""
cleanup() {
	if [[ -n "$VGW_PID" ]]; then
		kill "$VGW_PID" 2>/dev/null || true
		wait "$VGW_PID" 2>/dev/null || true
	fi
	if [[ "$KEEP" == 1 ]]; then
		echo "kept $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

need=()
[[ -x /usr/bin/time ]] || need+=(time)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
	log "installing ${need[*]}"
	SUDO=""
	[[ $(id -u) -ne 0 ]] && SUDO=sudo
	$SUDO apt-get install -y "${need[@]}" >/dev/null
fi
VGW=$(command -v versitygw || echo "$(go env GOPATH)/bin/versitygw")
if [[ ! -x "$VGW" ]]; then
	echo "versitygw is not installed: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0" >&2
	exit 1
fi

log "building into $WORK/bin"
# The revision as built (other commits may land while the benchmark runs).
REV=$(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo "no commit")
mkdir -p "$WORK/bin" "$WORK/t" "$WORK/bk"
(
	cd "$REPO"
	go build -o "$WORK/bin/magpie" ./cmd/magpie
	go build -o "$WORK/bin/gendump" ./bench/gendump
)
M="$WORK/bin/magpie"
DATA="$WORK/data"
MK=(--data "$DATA" --master-key "$DATA.master.key")

now_ns() { date +%s%N; }
# secs START_NS END_NS
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
# calc EXPR: floating-point arithmetic (calc3: three decimals)
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }
calc3() { awk "BEGIN { printf \"%.3f\", $1 }"; }
# check COND: PASS or MISS
check() { awk "BEGIN { exit !($1) }" && echo PASS || echo MISS; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
human() { awk -v b="$1" 'BEGIN { if (b >= 1073741824) printf "%.2f GiB", b / 1073741824; else if (b >= 1048576) printf "%.1f MiB", b / 1048576; else printf "%.1f KiB", b / 1024 }'; }
dsize() { du -sb "$1" | awk '{ print $1 }'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# jnum FIELD [FILE]: the first number of "FIELD": in FILE ($WORK/last.out).
jnum() { sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" "${2:-$WORK/last.out}" | head -1; }
# expect WHAT GOT WANT: exits when they differ, showing the last output.
expect() {
	if [[ "$2" != "$3" ]]; then
		echo "$1: got '$2', expected '$3'" >&2
		cat "$WORK/last.out" >&2
		exit 1
	fi
}

# The database's secret key (database-mode backups are encrypted with it,
# restores open them with it).
"$M" secrets generate >"$WORK/db.key"
chmod 600 "$WORK/db.key"

# timed LABEL CMD...: runs CMD under /usr/bin/time and appends
# "wall_s rss_kib cpu_s" to $WORK/t/LABEL; its stdout is left in $WORK/last.out.
timed() {
	local label=$1
	shift
	local t0 t1
	t0=$(now_ns)
	if ! /usr/bin/time -f '%e %M %U %S' -o "$WORK/time.txt" "$@" >"$WORK/last.out" 2>"$WORK/last.err"; then
		echo "failed: $*" >&2
		cat "$WORK/last.err" "$WORK/time.txt" >&2
		exit 1
	fi
	t1=$(now_ns)
	awk -v w="$(secs "$t0" "$t1")" 'END { printf "%s %s %.2f\n", w, $2, $3 + $4 }' "$WORK/time.txt" >>"$WORK/t/$label"
}
# med LABEL [COLUMN]: median of a column (1 wall s, 2 RSS KiB, 3 CPU s).
med() { sort -g -k"${2:-1},${2:-1}" "$WORK/t/$1" | awk -v c="${2:-1}" '{ a[NR] = $c } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
maxcol() { awk -v c="${2:-2}" 'BEGIN { m = 0 } $c > m { m = $c } END { print m }' "$WORK/t/$1"; }
last() { tail -1 "$WORK/t/$1" | cut -d' ' -f1; }
# order I A B...: the labels A B... forward on odd runs, reversed on even.
order() {
	local i=$1
	shift
	if ((i % 2)); then echo "$@"; else echo "$@" | tr ' ' '\n' | tac | tr '\n' ' '; fi
}
count_docs() { "$M" "$@" | sed -n 's/.*"CountOfDocuments": *\([0-9]*\).*/\1/p'; }

# --- the database -----------------------------------------------------------

LOAD_START=$(load)
log "generating $N documents"
"$WORK/bin/gendump" -n "$N" -o "$WORK/lastfm.ravendbdump" 2>"$WORK/gendump.log"
cat "$WORK/gendump.log" >&2
JSON_BYTES=$(sed -n 's/.* docs, \([0-9]*\) bytes of JSON.*/\1/p' "$WORK/gendump.log")
"$M" "${MK[@]}" db create bench --encrypted --key-file "$WORK/db.key" >/dev/null 2>&1
log "importing into an encrypted database (load average $(load))"
timed import "$M" "${MK[@]}" import bench "$WORK/lastfm.ravendbdump" --json
rm -f "$WORK/lastfm.ravendbdump"
expect "stats CountOfDocuments" "$(count_docs "${MK[@]}" stats bench --json)" "$N"
DB_SIZE=$(dsize "$DATA")
log "imported in $(med import) s; store $(human "$DB_SIZE")"

# change LABEL: overwrites the next 1% slice of the ids (lastfm/FIRST ..
# lastfm/FIRST+P-1, slices taken in turn) with new content, importing a
# gendump dump made with another seed; the import is timed as LABEL.
# Sets CHANGED_FIRST to FIRST.
CHG=0
change() {
	local label=$1
	CHG=$((CHG + 1))
	CHANGED_FIRST=$((((CHG - 1) % 100) * P + 1))
	"$WORK/bin/gendump" -n "$P" -first "$CHANGED_FIRST" -seed $((1000 + CHG)) -o "$WORK/change.ravendbdump" 2>/dev/null
	timed "$label" "$M" "${MK[@]}" import bench "$WORK/change.ravendbdump" --json
	expect "documents changed" "$(jnum Documents)" "$P"
	rm -f "$WORK/change.ravendbdump"
}
doc() { "$M" "$@" 2>/dev/null || true; }

# --- 1. incremental after a 1% change vs full -------------------------------

# one_incremental RUN: full into a fresh folder, 1% change, incremental,
# incremental with nothing changed; then removes the folder.
one_incremental() {
	local r=$1
	local to="$WORK/bk/inc-$r"
	timed full "$M" "${MK[@]}" backup run bench --to "$to" --json
	expect "full backup documents" "$(jnum documents)" "$N"
	SIZE_FULL=$(jnum size)
	if ((r == 1)); then doc "${MK[@]}" docs get bench "lastfm/$((CHG % 100 * P + 1))" >"$WORK/before.json"; fi
	change change
	if ((r == 1)); then
		doc "${MK[@]}" docs get bench "lastfm/$CHANGED_FIRST" >"$WORK/after.json"
		if [[ ! -s "$WORK/before.json" ]] || cmp -s "$WORK/before.json" "$WORK/after.json"; then
			echo "the change did not change lastfm/$CHANGED_FIRST" >&2
			exit 1
		fi
	fi
	timed incr "$M" "${MK[@]}" backup run bench --to "$to" --incremental --json
	grep -q '"kind": *"incremental-backup"' "$WORK/last.out" || expect "incremental kind" "$(cat "$WORK/last.out")" incremental-backup
	expect "incremental backup documents" "$(jnum documents)" "$P"
	SIZE_INCR=$(jnum size)
	timed noop "$M" "${MK[@]}" backup run bench --to "$to" --incremental --json
	grep -q '"Unchanged": *true' "$WORK/last.out" || expect "unchanged incremental" "$(cat "$WORK/last.out")" '"Unchanged": true'
	expect "backup files after the unchanged incremental" "$(find "$to" -name '*.age' | wc -l)" 2
	rm -rf "$to"
}

LOAD_1=$(load)
log "1. incremental after a 1% change ($P docs) vs full, $RUNS runs (load average $LOAD_1)"
for ((i = 1; i <= RUNS; i++)); do
	one_incremental "$i"
	log "run $i: full $(last full) s, change $(last change) s, incremental $(last incr) s, unchanged $(last noop) s"
done
LOAD_1_END=$(load)

# --- 2. full backup to S3 vs to a local folder ------------------------------

# start_s3: versitygw (posix backend in $WORK/s3) on a free loopback port, as
# internal/testservers/s3.go starts it, with the bucket "bench".
start_s3() {
	local tries port
	S3_ROOT="$WORK/s3"
	mkdir -p "$S3_ROOT"
	export AWS_ACCESS_KEY_ID=magpiebench
	AWS_SECRET_ACCESS_KEY=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
	export AWS_SECRET_ACCESS_KEY
	# Nothing of the machine's own AWS configuration.
	export AWS_SESSION_TOKEN="" AWS_PROFILE="" AWS_REGION="" AWS_DEFAULT_REGION=""
	export AWS_CONFIG_FILE="$WORK/none" AWS_SHARED_CREDENTIALS_FILE="$WORK/none" AWS_EC2_METADATA_DISABLED=true
	for ((tries = 0; tries < 5; tries++)); do
		port=$((20000 + RANDOM % 40000))
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
		ROOT_ACCESS_KEY=$AWS_ACCESS_KEY_ID ROOT_SECRET_KEY=$AWS_SECRET_ACCESS_KEY \
			"$VGW" --port "127.0.0.1:$port" --quiet posix "$S3_ROOT" >"$WORK/versitygw.log" 2>&1 &
		VGW_PID=$!
		local k
		for ((k = 0; k < 100; k++)); do
			kill -0 "$VGW_PID" 2>/dev/null || break
			# CreateBucket, signed by curl (x-amz-content-sha256: of the empty body).
			if curl -fsS --aws-sigv4 "aws:amz:us-east-1:s3" -u "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
				-H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
				-X PUT "http://127.0.0.1:$port/bench" >"$WORK/curl.out" 2>&1; then
				S3_PORT=$port
				return 0
			fi
			sleep 0.1
		done
		kill "$VGW_PID" 2>/dev/null || true
		wait "$VGW_PID" 2>/dev/null || true
		VGW_PID=""
	done
	echo "could not start versitygw or create the bucket:" >&2
	cat "$WORK/versitygw.log" "$WORK/curl.out" >&2
	exit 1
}
s3_url() { echo "s3://bench/$1?endpoint=http%3A%2F%2F127.0.0.1%3A$S3_PORT"; }
# vgw_cpu: CPU seconds (user+sys) versitygw has used so far.
CLK_TCK=$(getconf CLK_TCK)
vgw_cpu() { awk -v hz="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$VGW_PID/stat"; }

# one_dest LABEL RUN: a full backup to a fresh local folder (local) or S3
# prefix (s3), then removes it (except the S3 backup of the last run, kept
# for `backup verify`).
one_dest() {
	local label=$1 r=$2 c0 c1
	case $label in
	local)
		timed local "$M" "${MK[@]}" backup run bench --to "$WORK/bk/local-$r" --json
		SIZE_LOCAL=$(dsize "$WORK/bk/local-$r")
		rm -rf "$WORK/bk/local-$r"
		;;
	s3)
		c0=$(vgw_cpu)
		timed s3 "$M" "${MK[@]}" backup run bench --to "$(s3_url "run-$r")" --json
		c1=$(vgw_cpu)
		{
			calc "$c1 - $c0"
			echo
		} >>"$WORK/t/vgwcpu"
		SIZE_S3=$(dsize "$S3_ROOT/bench/run-$r")
		((r == RUNS)) || rm -rf "${S3_ROOT:?}/bench/run-$r"
		;;
	esac
	expect "$label backup documents" "$(jnum documents)" "$N"
}

log "starting versitygw"
start_s3
log "versitygw (pid $VGW_PID) on 127.0.0.1:$S3_PORT, bucket bench in $S3_ROOT"
LOAD_2=$(load)
log "2. full backup to S3 vs to a local folder, $RUNS runs (load average $LOAD_2)"
for ((i = 1; i <= RUNS; i++)); do
	for label in $(order "$i" local s3); do
		one_dest "$label" "$i"
	done
	log "run $i: local $(last local) s, S3 $(last s3) s (versitygw CPU $(tail -1 "$WORK/t/vgwcpu") s)"
done
timed verifys3 "$M" backup verify "$(s3_url "run-$RUNS")" --key-file "$WORK/db.key" --json
if ! grep -q '"Decrypted": *true' "$WORK/last.out"; then
	echo "verify did not decrypt the S3 backup:" >&2
	cat "$WORK/last.out" >&2
	exit 1
fi
log "backup verify of the S3 backup: $(last verifys3) s"
rm -rf "${S3_ROOT:?}/bench/run-$RUNS"
kill "$VGW_PID" 2>/dev/null || true
wait "$VGW_PID" 2>/dev/null || true
VGW_PID=""
LOAD_2_END=$(load)

# --- 3. restore of full + CHAIN incrementals vs a single full ---------------

LOAD_3=$(load)
log "3. building a chain of a full backup + $CHAIN incrementals (each after a 1% change) (load average $LOAD_3)"
timed chainbackup "$M" "${MK[@]}" backup run bench --to "$WORK/chain" --json
expect "chain full backup documents" "$(jnum documents)" "$N"
for ((k = 1; k <= CHAIN; k++)); do
	change chainchange
	((k == 1)) && FIRST_SLICE=$CHANGED_FIRST
	timed chainincr "$M" "${MK[@]}" backup run bench --to "$WORK/chain" --incremental --json
	expect "chain incremental $k documents" "$(jnum documents)" "$P"
done
LAST_SLICE=$CHANGED_FIRST
expect "files in the chain" "$(find "$WORK/chain" -name '*.age' | wc -l)" $((CHAIN + 1))
timed single "$M" "${MK[@]}" backup run bench --to "$WORK/single" --json
expect "single full backup documents" "$(jnum documents)" "$N"
SIZE_CHAIN=$(dsize "$WORK/chain")
SIZE_SINGLE=$(dsize "$WORK/single")
expect "stats CountOfDocuments after the changes" "$(count_docs "${MK[@]}" stats bench --json)" "$N"
DB_SIZE_END=$(dsize "$DATA")
# Reference documents: first and last changed slice, and the last id (never
# changed: slices start at 1 and there are at most 100 of them before N).
REF_IDS=("lastfm/$FIRST_SLICE" "lastfm/$LAST_SLICE" "lastfm/$N")
for id in "${REF_IDS[@]}"; do
	doc "${MK[@]}" docs get bench "$id" >"$WORK/ref-${id//\//-}.json"
	[[ -s "$WORK/ref-${id//\//-}.json" ]] || expect "source document $id" missing present
done

# one_restore LABEL DIR RUN FILES: restore DIR (FILES backup files) into a
# fresh data dir, checks the count and the reference documents, removes it.
one_restore() {
	local label=$1 dir=$2 r=$3 files=$4
	local rd="$WORK/rdata-$label-$r" id
	timed "$label" "$M" --data "$rd" --master-key "$rd.master.key" restore "$dir" --as copy --key-file "$WORK/db.key" --json
	expect "$label CountOfDocuments" "$(jnum CountOfDocuments)" "$N"
	expect "$label files restored" "$(grep -c '\.age"' "$WORK/last.out")" "$files"
	for id in "${REF_IDS[@]}"; do
		doc --data "$rd" --master-key "$rd.master.key" docs get copy "$id" >"$WORK/got.json"
		if ! cmp -s "$WORK/got.json" "$WORK/ref-${id//\//-}.json"; then
			echo "$label: restored $id differs from the source database" >&2
			exit 1
		fi
	done
	rm -rf "$rd" "$rd.master.key"
}

log "3. restore of the chain vs the single full backup, $RUNS runs (load average $(load))"
for ((i = 1; i <= RUNS; i++)); do
	for label in $(order "$i" rsingle rchain); do
		if [[ "$label" == rsingle ]]; then
			one_restore rsingle "$WORK/single" "$i" 1
		else
			one_restore rchain "$WORK/chain" "$i" $((CHAIN + 1))
		fi
	done
	log "run $i: single full $(last rsingle) s, chain $(last rchain) s"
done
LOAD_3_END=$(load)

# --- summary ----------------------------------------------------------------

MEM=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)

tm() { echo "$(med "$1") s (CPU $(med "$1" 3) s)"; }
# cratio A B: ratio of the CPU-time (user+sys) medians.
cratio() { awk -v a="$(med "$1" 3)" -v b="$(med "$2" 3)" 'BEGIN { if (b > 0) printf "%.3f", a / b; else printf "n/a " }'; }
rss_max() { mib "$(maxcol "$1" 2)"; }
runs_of() { tr '\n' ' ' <"$WORK/t/$1" | awk '{ s = ""; for (i = 1; i <= NF; i += 3) s = s (s ? ", " : "") $i; print s }'; }
rss_row() {
	local what=$1 m
	shift
	m=$(for l in "$@"; do maxcol "$l" 2; done | sort -n | tail -1)
	echo "| peak RSS, $what (max) | $(mib "$m") MiB | <= 256 MiB | $(check "$(mib "$m") <= 256") |"
}
dps() { awk -v n="$N" -v s="$(med "$1")" 'BEGIN { printf "%.0f", n / s }'; }

R_INCR=$(calc3 "$(med incr) / $(med full)")
# Every sample of the same two commands (parts 1 to 3: the chain's
# incrementals also follow a 1% change; parts 2 and 3 make full backups to a
# local folder of the same database): a steadier median on a busy machine.
cat "$WORK/t/incr" "$WORK/t/chainincr" >"$WORK/t/allincr"
cat "$WORK/t/full" "$WORK/t/local" "$WORK/t/chainbackup" "$WORK/t/single" >"$WORK/t/allfull"
R_ALL=$(calc3 "$(med allincr) / $(med allfull)")
R_NOOP=$(calc3 "$(med noop) / $(med full)")
R_S3=$(calc "$(med s3) / $(med local)")
R_CHAIN=$(calc "$(med rchain) / $(med rsingle)")
VGW_CPU_MED=$(sort -g "$WORK/t/vgwcpu" | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
ALL_RSS=$(for l in full incr noop local s3 verifys3 chainbackup chainincr single rsingle rchain; do maxcol "$l" 2; done | sort -n | tail -1)

{
	echo "# magpie incremental backup benchmark"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- machine: $(nproc) CPUs ($CPU), $MEM RAM, $(uname -sr)"
	echo "- build: $(go version | awk '{ print $3 }'), magpie $REV; versitygw $(go version -m "$VGW" 2>/dev/null | awk '$1 == "mod" { print $3 }') (posix backend, same local disk as the data)"
	echo "- data: bench/gendump, $N LastFm documents of ~1 KB ($(human "$JSON_BYTES") of JSON), imported into an encrypted database; a 1% change = a gendump import of $P documents over existing ids (new content), each change the next slice of ids"
	echo "- method: median of $RUNS runs; part 1 in a fixed order (full into a fresh folder, change, incremental, incremental with nothing changed), parts 2 and 3 alternated (odd runs local / single first); database-mode encryption throughout; page cache warm; magpie fsyncs its output"
	echo "- load average (1/5/15 min, $(nproc) CPUs; other processes inflate wall times): start $LOAD_START; part 1 $LOAD_1 → $LOAD_1_END; part 2 $LOAD_2 → $LOAD_2_END; part 3 $LOAD_3 → $LOAD_3_END"
	echo "- command: \`N=$N RUNS=$RUNS CHAIN=$CHAIN bench/incremental.sh\`"
	echo
	echo "| measure (N = $N) | value | target | result |"
	echo "|---|---|---|---|"
	echo "| store size (encrypted): after import / at the end | $(human "$DB_SIZE") / $(human "$DB_SIZE_END") | | |"
	echo "| full backup size / incremental (1%) size | $(human "$SIZE_FULL") / $(human "$SIZE_INCR") | | |"
	echo "| 1. full backup to a local folder | $(tm full) | | |"
	echo "| 1. change of 1% (import of $P docs, for reference) | $(tm change) | | |"
	echo "| 1. incremental backup after 1% changed | $(tm incr) | | |"
	echo "| 1. incremental / full | ${R_INCR} (CPU $(cratio incr full)) | <= 0.03 | $(check "$R_INCR <= 0.03") |"
	echo "| 1. the same, every sample: $(wc -l <"$WORK/t/allincr") incrementals after a 1% change (parts 1, 3) / $(wc -l <"$WORK/t/allfull") full backups to a folder (parts 1-3) | $(med allincr) s / $(med allfull) s = ${R_ALL} (CPU $(cratio allincr allfull)) | <= 0.03 | $(check "$R_ALL <= 0.03") |"
	echo "| 1. incremental with nothing changed (no file; fixed cost) | $(tm noop), ${R_NOOP} of full | | |"
	echo "| 2. full backup to a local folder | $(tm local) | | |"
	echo "| 2. full backup to S3 (versitygw, loopback) | $(tm s3); versitygw CPU $VGW_CPU_MED s | | |"
	echo "| 2. S3 / local | ${R_S3}x (CPU $(cratio s3 local)x, magpie only) | none (report) | |"
	echo "| 2. backup sizes: local / S3 (versitygw's folder) | $(human "$SIZE_LOCAL") / $(human "$SIZE_S3") | | |"
	echo "| 2. \`backup verify\` of the S3 backup (1 run, for reference) | $(tm verifys3) | | |"
	echo "| 3. chain: full + $CHAIN incrementals / single full, sizes | $(human "$SIZE_CHAIN") / $(human "$SIZE_SINGLE") | | |"
	echo "| 3. restore of the single full backup | $(tm rsingle), $(dps rsingle) docs/s | | |"
	echo "| 3. restore of full + $CHAIN incrementals | $(tm rchain), $(dps rchain) docs/s | | |"
	echo "| 3. chain / single | ${R_CHAIN}x (CPU $(cratio rchain rsingle)x) | none (report) | |"
	rss_row "full backups (part 1, 2 local, 3)" full local chainbackup single
	rss_row "incremental backups (1% changed, parts 1 and 3)" incr chainincr
	rss_row "incremental, nothing changed" noop
	rss_row "full backup to S3" s3
	rss_row "backup verify from S3" verifys3
	rss_row "restore, single full" rsingle
	rss_row "restore, full + $CHAIN incrementals" rchain
	echo "| peak RSS, every backup, verify and restore run (max) | $(mib "$ALL_RSS") MiB | <= 256 MiB | $(check "$(mib "$ALL_RSS") <= 256") |"
	echo "| (import of the dump / of a 1% change, for reference) | $(tm import), $(rss_max import) MiB / $(rss_max change) MiB | | |"
	echo
	echo "<details><summary>every run (wall s, in run order)</summary>"
	echo
	echo "- 1 full: $(runs_of full)"
	echo "- 1 change: $(runs_of change)"
	echo "- 1 incremental: $(runs_of incr)"
	echo "- 1 unchanged incremental: $(runs_of noop)"
	echo "- 2 local: $(runs_of local)"
	echo "- 2 S3: $(runs_of s3) (versitygw CPU s: $(tr '\n' ' ' <"$WORK/t/vgwcpu" | sed 's/ *$//; s/ /, /g'))"
	echo "- 3 chain building: full $(runs_of chainbackup); incrementals $(runs_of chainincr)"
	echo "- 3 restore single: $(runs_of rsingle)"
	echo "- 3 restore chain: $(runs_of rchain)"
	echo
	echo "</details>"
} >"$WORK/summary.md"

mkdir -p "$OUT_DIR"
cp "$WORK/summary.md" "$OUT_DIR/incremental-latest.md"
echo
cat "$WORK/summary.md"
echo
log "written to bench/out/incremental-latest.md"
