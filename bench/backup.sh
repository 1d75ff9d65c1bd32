#!/usr/bin/env bash
# Backup benchmark (DESIGN.md sections 4 and 8): generates a .ravendbdump of
# N LastFm documents (~1 KB of JSON each) with bench/gendump, imports it into
# a fresh ENCRYPTED database and, in the same run on the same data, measures
# each subject beside its baseline, alternating the two (odd runs baseline
# first, even runs subject first) so drift and page-cache state even out:
#
#   - logical backup `--encryption recipients --recipient R` and the default
#     (database) mode  vs  `zstd -1 -T0 < export.json | age -r R > out`, where
#     export.json is the database's own export (`magpie export`, `zstd -d`);
#   - encrypted (database, recipients) vs `--encryption none` logical backup;
#   - `--type snapshot`  vs  `cp -r --reflink=never` of the data dir;
#   - `restore` of the database-mode backup (docs/s) and `backup verify` of
#     the same backup vs that restore;
#   - peak RSS (/usr/bin/time %M) of backup, snapshot, restore and verify, and
#     (DOUBLE=1, the default) again at 2N to show it stays flat.
#
# Every figure is the median of RUNS runs, each into a fresh --to folder
# (removed after the run). The page cache is not dropped (it cannot be here):
# both sides read warm data. magpie fsyncs its backup files and restored
# databases; the baselines (as specified) do not.
#
# Targets: recipients and database backup <= 1.5x baseline; encrypted <=
# 1.10x unencrypted; snapshot <= 1.2x cp; restore >= 100,000 docs/s; verify
# <= 0.5x restore; peak RSS <= 256 MiB and RSS(2N) <= FLAT_TOL x RSS(N).
#
# Usage: bench/backup.sh                  # N=1000000, DOUBLE=1, RUNS=5
#        N=20000 bench/backup.sh          # quick check
# Env:   N (1000000), DOUBLE (1), RUNS (5), RUNS_2N (3: runs per command at
#        2N), FLAT_TOL (1.15), KEEP (0: remove the temp dir at the end),
#        TMPDIR (where dumps, data dirs and backups go; ~6 GB per million
#        docs, x3 with DOUBLE=1).
# The pass/fail column judges wall-time medians, as specified; the CPU-time
# ratio beside each (user+sys, medians) is the check that is robust to other
# load on the machine.
# Output: a markdown summary on stdout and in bench/out/backup-latest.md.
set -euo pipefail

N=${N:-1000000}
DOUBLE=${DOUBLE:-1}
RUNS=${RUNS:-5}
RUNS_2N=${RUNS_2N:-3}
FLAT_TOL=${FLAT_TOL:-1.15}
KEEP=${KEEP:-0}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR="$REPO/bench/out"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/magpie-backup-bench.XXXXXX")
cleanup() {
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
command -v zstd >/dev/null || need+=(zstd)
command -v age >/dev/null && command -v age-keygen >/dev/null || need+=(age)
if ((${#need[@]})); then
	log "installing ${need[*]}"
	SUDO=""
	[[ $(id -u) -ne 0 ]] && SUDO=sudo
	$SUDO apt-get install -y "${need[@]}" >/dev/null
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

now_ns() { date +%s%N; }
# secs START_NS END_NS
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
# calc EXPR: floating-point arithmetic
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }
# check COND: PASS or MISS
check() { awk "BEGIN { exit !($1) }" && echo PASS || echo MISS; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
human() { awk -v b="$1" 'BEGIN { if (b >= 1073741824) printf "%.2f GiB", b / 1073741824; else printf "%.1f MiB", b / 1048576 }'; }
dsize() { du -sb "$1" | awk '{ print $1 }'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# Keys: the database's secret key, and an age X25519 identity whose
# recipient both the baseline and `--encryption recipients` encrypt to.
"$M" secrets generate >"$WORK/db.key"
chmod 600 "$WORK/db.key"
age-keygen -o "$WORK/age.id" 2>/dev/null
chmod 600 "$WORK/age.id"
R=$(age-keygen -y "$WORK/age.id")

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
# order I A B...: the labels A B... forward on odd runs, reversed on even.
order() {
	local i=$1
	shift
	if ((i % 2)); then echo "$@"; else echo "$@" | tr ' ' '\n' | tac | tr '\n' ' '; fi
}

# prepare TAG SIZE: generates SIZE documents, imports them into an encrypted
# database "bench" in $WORK/data-TAG and (EXPORT=1) writes its uncompressed
# export to $WORK/export-TAG.json.
prepare() {
	local tag=$1 n=$2 export_json=${3:-1}
	local dump="$WORK/lastfm-$tag.ravendbdump" data="$WORK/data-$tag"
	log "[$tag] generating $n documents"
	"$WORK/bin/gendump" -n "$n" -o "$dump" 2>"$WORK/gendump-$tag.log"
	cat "$WORK/gendump-$tag.log" >&2
	"$M" --data "$data" --master-key "$data.master.key" db create bench --encrypted --key-file "$WORK/db.key" >/dev/null 2>&1
	log "[$tag] importing into an encrypted database (load average $(load))"
	timed "import-$tag" "$M" --data "$data" --master-key "$data.master.key" import bench "$dump" --json
	rm -f "$dump"
	local count
	count=$("$M" --data "$data" --master-key "$data.master.key" stats bench --json | sed -n 's/.*"CountOfDocuments": *\([0-9]*\).*/\1/p')
	if [[ "$count" != "$n" ]]; then
		echo "stats report $count documents, expected $n" >&2
		exit 1
	fi
	printf -v "DB_SIZE_$tag" '%s' "$(dsize "$data")"
	log "[$tag] imported in $(med "import-$tag") s; store $(human "$(dsize "$data")")"
	if [[ "$export_json" == 1 ]]; then
		log "[$tag] exporting the baseline's input (magpie export, zstd -d)"
		"$M" --data "$data" --master-key "$data.master.key" export bench "$WORK/x-$tag.ravendbdump" >/dev/null
		zstd -q -d "$WORK/x-$tag.ravendbdump" -o "$WORK/export-$tag.json"
		printf -v "EXPORT_ZST_SIZE_$tag" '%s' "$(stat -c %s "$WORK/x-$tag.ravendbdump")"
		printf -v "EXPORT_JSON_SIZE_$tag" '%s' "$(stat -c %s "$WORK/export-$tag.json")"
		rm -f "$WORK/x-$tag.ravendbdump"
	fi
}

# one_logical TAG LABEL RUN: one logical backup run of LABEL (baseline,
# database, recipients or none) into a fresh folder, then removes it
# (except for the database-mode backup of the last run, kept in
# $WORK/keep-TAG for restore and verify). Records the output size.
one_logical() {
	local tag=$1 label=$2 r=$3
	local data="$WORK/data-$tag" to="$WORK/bk/$tag-$label-$r"
	local mk=(--data "$data" --master-key "$data.master.key")
	case $label in
	baseline)
		mkdir -p "$to"
		timed "$label-$tag" bash -c 'zstd -q -1 -T0 <"$1" | age -r "$2" >"$3"' _ "$WORK/export-$tag.json" "$R" "$to/export.json.zst.age"
		;;
	database) timed "$label-$tag" "$M" "${mk[@]}" backup run bench --to "$to" --json ;;
	recipients) timed "$label-$tag" "$M" "${mk[@]}" backup run bench --to "$to" --encryption recipients --recipient "$R" --json ;;
	none) timed "$label-$tag" "$M" "${mk[@]}" backup run bench --to "$to" --encryption none --json ;;
	snapshot) timed "$label-$tag" "$M" "${mk[@]}" backup run bench --to "$to" --type snapshot --json ;;
	cp)
		mkdir -p "$to"
		timed "$label-$tag" cp -r --reflink=never "$data" "$to/data"
		;;
	esac
	printf -v "SIZE_${label}_$tag" '%s' "$(dsize "$to")"
	if [[ "$label" == database && "$r" == last ]]; then
		rm -rf "$WORK/keep-$tag"
		mv "$to" "$WORK/keep-$tag"
	else
		rm -rf "$to"
	fi
}

# one_restore TAG RUN / one_verify TAG RUN: restore (into a fresh data dir,
# removed afterwards) and verify the kept database-mode backup.
one_restore() {
	local tag=$1 r=$2 n=$3
	local rd="$WORK/rdata-$tag-$r"
	timed "restore-$tag" "$M" --data "$rd" --master-key "$rd.master.key" restore "$WORK/keep-$tag" --as copy --key-file "$WORK/db.key" --json
	local count
	count=$(sed -n 's/.*"CountOfDocuments": *\([0-9]*\).*/\1/p' "$WORK/last.out")
	if [[ "$count" != "$n" ]]; then
		echo "restore reported $count documents, expected $n" >&2
		cat "$WORK/last.out" >&2
		exit 1
	fi
	printf -v "SIZE_restored_$tag" '%s' "$(dsize "$rd")"
	rm -rf "$rd" "$rd.master.key"
}
one_verify() {
	local tag=$1
	timed "verify-$tag" "$M" backup verify "$WORK/keep-$tag" --key-file "$WORK/db.key" --json
	if ! grep -q '"Decrypted": *true' "$WORK/last.out"; then
		echo "verify did not decrypt the backup:" >&2
		cat "$WORK/last.out" >&2
		exit 1
	fi
}

# measure TAG SIZE RUNS: every pair, RUNS times, alternating.
measure() {
	local tag=$1 n=$2 runs=$3 i r label
	printf -v "LOAD_$tag" '%s' "$(load)"
	log "[$tag] logical backups, $runs runs (load average $(load))"
	for ((i = 1; i <= runs; i++)); do
		r=$i
		((i == runs)) && r=last
		for label in $(order "$i" baseline database recipients none); do
			one_logical "$tag" "$label" "$r"
		done
		log "[$tag] run $i: baseline $(tail -1 "$WORK/t/baseline-$tag" | cut -d' ' -f1) s, database $(tail -1 "$WORK/t/database-$tag" | cut -d' ' -f1) s, recipients $(tail -1 "$WORK/t/recipients-$tag" | cut -d' ' -f1) s, none $(tail -1 "$WORK/t/none-$tag" | cut -d' ' -f1) s"
	done
	log "[$tag] snapshots, $runs runs (load average $(load))"
	for ((i = 1; i <= runs; i++)); do
		for label in $(order "$i" cp snapshot); do
			one_logical "$tag" "$label" "$i"
		done
		log "[$tag] run $i: cp -r $(tail -1 "$WORK/t/cp-$tag" | cut -d' ' -f1) s, snapshot $(tail -1 "$WORK/t/snapshot-$tag" | cut -d' ' -f1) s"
	done
	log "[$tag] restore and verify, $runs runs (load average $(load))"
	for ((i = 1; i <= runs; i++)); do
		for label in $(order "$i" restore verify); do
			if [[ "$label" == restore ]]; then one_restore "$tag" "$i" "$n"; else one_verify "$tag"; fi
		done
		log "[$tag] run $i: restore $(tail -1 "$WORK/t/restore-$tag" | cut -d' ' -f1) s, verify $(tail -1 "$WORK/t/verify-$tag" | cut -d' ' -f1) s"
	done
	printf -v "LOAD_END_$tag" '%s' "$(load)"
}

LOAD_START=$(load)
prepare A "$N" 1
measure A "$N" "$RUNS"
if [[ "$DOUBLE" == 1 ]]; then
	# Free the N data before the 2N run (the figures are kept in $WORK/t).
	rm -rf "$WORK/data-A" "$WORK/keep-A" "$WORK/export-A.json"
	prepare B $((2 * N)) 1
	measure B $((2 * N)) "$RUNS_2N"
fi

# Summary.
MEM=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)

# row_time LABEL TAG: "median s (CPU median s)"
tm() { echo "$(med "$1-$2") s (CPU $(med "$1-$2" 3) s)"; }
ratio() { calc "$(med "$1-$3") / $(med "$2-$3")"; }
# cratio A B TAG: ratio of the CPU-time (user+sys) medians.
cratio() { awk -v a="$(med "$1-$3" 3)" -v b="$(med "$2-$3" 3)" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a " }'; }
dps() { awk -v n="$1" -v s="$(med "restore-$2")" 'BEGIN { printf "%.0f", n / s }'; }
rss_max() { mib "$(maxcol "$1-$2" 2)"; }
rss_med() { mib "$(med "$1-$2" 2)"; }
runs_of() { tr '\n' ' ' <"$WORK/t/$1-$2" | awk '{ s = ""; for (i = 1; i <= NF; i += 3) s = s (s ? ", " : "") $i; print s }'; }

R_REC=$(ratio recipients baseline A)
R_DB=$(ratio database baseline A)
R_DB_NONE=$(ratio database none A)
R_REC_NONE=$(ratio recipients none A)
R_SNAP=$(ratio snapshot cp A)
R_VER=$(ratio verify restore A)
DPS_A=$(dps "$N" A)
BACKUP_RSS_A=$(for l in database recipients none; do maxcol "$l-A" 2; done | sort -n | tail -1)

{
	echo "# magpie backup benchmark"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- machine: $(nproc) CPUs ($CPU), $MEM RAM, $(uname -sr)"
	echo "- build: $(go version | awk '{ print $3 }'), magpie $REV; zstd $(zstd -V | grep -o "v[0-9.]*" | head -1), age $(age --version)"
	echo "- data: bench/gendump, LastFm documents of ~1 KB, imported into an encrypted database; baseline input = its \`magpie export\`, \`zstd -d\`"
	echo "- method: median of $RUNS runs (2N: $RUNS_2N), baseline and subject alternated, fresh \`--to\` folder per run; page cache warm for both sides; magpie fsyncs its output, the baselines do not"
	LOADS="start $LOAD_START; N phase $LOAD_A → $LOAD_END_A"
	if [[ "$DOUBLE" == 1 ]]; then LOADS="$LOADS; 2N phase $LOAD_B → $LOAD_END_B"; fi
	echo "- load average (1/5/15 min, $(nproc) CPUs; other processes inflate wall times): $LOADS"
	echo "- command: \`N=$N DOUBLE=$DOUBLE RUNS=$RUNS bench/backup.sh\`"
	echo
	echo "| measure (N = $N) | value | target | result |"
	echo "|---|---|---|---|"
	echo "| store size (encrypted) / export JSON / export zstd | $(human "$DB_SIZE_A") / $(human "$EXPORT_JSON_SIZE_A") / $(human "$EXPORT_ZST_SIZE_A") | | |"
	echo "| backup sizes: baseline / database / recipients / none / snapshot | $(human "$SIZE_baseline_A") / $(human "$SIZE_database_A") / $(human "$SIZE_recipients_A") / $(human "$SIZE_none_A") / $(human "$SIZE_snapshot_A") | | |"
	echo "| baseline \`zstd -1 -T0 < export.json \\| age -r R\` | $(tm baseline A) | | |"
	echo "| backup logical, \`--encryption database\` (default) | $(tm database A) | | |"
	echo "| backup logical, \`--encryption recipients\` | $(tm recipients A) | | |"
	echo "| backup logical, \`--encryption none\` | $(tm none A) | | |"
	echo "| recipients / baseline | ${R_REC}x (CPU $(cratio recipients baseline A)x) | <= 1.5x | $(check "$R_REC <= 1.5") |"
	echo "| database / baseline | ${R_DB}x (CPU $(cratio database baseline A)x) | <= 1.5x | $(check "$R_DB <= 1.5") |"
	echo "| database / none | ${R_DB_NONE}x (CPU $(cratio database none A)x) | <= 1.10x | $(check "$R_DB_NONE <= 1.10") |"
	echo "| recipients / none | ${R_REC_NONE}x (CPU $(cratio recipients none A)x) | <= 1.10x | $(check "$R_REC_NONE <= 1.10") |"
	echo "| \`cp -r --reflink=never\` of the data dir | $(tm cp A) | | |"
	echo "| backup \`--type snapshot\` | $(tm snapshot A) | | |"
	echo "| snapshot / cp | ${R_SNAP}x (CPU $(cratio snapshot cp A)x) | <= 1.2x | $(check "$R_SNAP <= 1.2") |"
	echo "| restore of the database-mode backup | $(tm restore A) | | |"
	echo "| restore docs/s (CPU s per million docs: $(calc "$(med restore-A 3) * 1000000 / $N")) | $DPS_A | >= 100,000 | $(check "$DPS_A >= 100000") |"
	echo "| \`backup verify --key-file\` | $(tm verify A) | | |"
	echo "| verify / restore | ${R_VER}x (CPU $(cratio verify restore A)x) | <= 0.5x | $(check "$R_VER <= 0.5") |"
	echo "| peak RSS, logical backup (max of all modes and runs) | $(mib "$BACKUP_RSS_A") MiB | <= 256 MiB | $(check "$(mib "$BACKUP_RSS_A") <= 256") |"
	echo "| peak RSS, snapshot (max) | $(rss_max snapshot A) MiB | <= 256 MiB | $(check "$(rss_max snapshot A) <= 256") |"
	echo "| peak RSS, restore (max) | $(rss_max restore A) MiB | <= 256 MiB | $(check "$(rss_max restore A) <= 256") |"
	echo "| peak RSS, verify (max) | $(rss_max verify A) MiB | <= 256 MiB | $(check "$(rss_max verify A) <= 256") |"
	echo "| (import of the dump, for reference) | $(tm import A), $(rss_max import A) MiB | | |"
	if [[ "$DOUBLE" == 1 ]]; then
		N2=$((2 * N))
		echo
		echo "Peak RSS when the database doubles (median of runs; 2N: $RUNS_2N run(s)):"
		echo
		echo "| peak RSS | N = $N | 2N = $N2 | 2N / N | target | result |"
		echo "|---|---|---|---|---|---|"
		for l in database recipients none snapshot restore verify; do
			a=$(med "$l-A" 2)
			b=$(med "$l-B" 2)
			g=$(calc "$b / $a")
			echo "| $l | $(mib "$a") MiB | $(mib "$b") MiB | ${g}x | <= 256 MiB, flat (<= ${FLAT_TOL}x) | $(check "$(mib "$b") <= 256 && $g <= $FLAT_TOL") |"
		done
		echo
		echo "| at 2N (for reference) | value |"
		echo "|---|---|"
		echo "| store size / export JSON | $(human "$DB_SIZE_B") / $(human "$EXPORT_JSON_SIZE_B") |"
		echo "| database / baseline, recipients / baseline | $(ratio database baseline B)x, $(ratio recipients baseline B)x |"
		echo "| database / none | $(ratio database none B)x |"
		echo "| snapshot / cp | $(ratio snapshot cp B)x |"
		echo "| restore docs/s, verify / restore | $(dps "$N2" B), $(ratio verify restore B)x |"
	fi
	echo
	echo "<details><summary>every run (wall s, in run order)</summary>"
	echo
	for tag in A B; do
		[[ "$tag" == B && "$DOUBLE" != 1 ]] && continue
		for l in baseline database recipients none cp snapshot restore verify; do
			echo "- $tag $l: $(runs_of "$l" "$tag")"
		done
	done
	echo
	echo "</details>"
} >"$WORK/summary.md"

mkdir -p "$OUT_DIR"
cp "$WORK/summary.md" "$OUT_DIR/backup-latest.md"
echo
cat "$WORK/summary.md"
echo
log "written to bench/out/backup-latest.md"
