# Shared helpers for bench/*.sh: timing whole commands and printing medians and ratios.
# Sourced, not run.

# ns_now: nanoseconds since the epoch.
ns_now() { date +%s%N; }

# median FILE: median of the numbers in FILE, one per line.
median() { sort -n "$1" | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# ratio A B: A/B with 3 decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a/b}'; }

# ms NS: nanoseconds as milliseconds with 2 decimals.
ms() { awk -v n="$1" 'BEGIN {printf "%.2f", n/1e6}'; }

# need_release_tools: builds the release binaries once.
need_release_tools() { make -s -C "$ROOT" tools >/dev/null 2>&1 || make -C "$ROOT" tools; }
