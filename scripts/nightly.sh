#!/usr/bin/env bash
# One night of benchmarks, as .github/workflows/nightly.yml runs it, and as
# anyone can run it by hand against any git remote:
#
#   1. fetch the stored history (branch bench-history of REMOTE; empty the
#      first night),
#   2. cnilab bench (every lab by default) into tonight's directory,
#   3. add tonight's runs to the history, keeping the newest KEEP_RUNS of
#      each lab,
#   4. the change-point gate (cnilab history --gate),
#   5. with PUSH=1, one commit holding the history, force-pushed to
#      bench-history (its size stays bounded),
#   6. exit 1 when the gate found a change point (after keeping the history:
#      the night that shows a shift must be stored too).
#
# Environment (all optional):
#   REMOTE      git remote (name or URL) holding bench-history   [origin]
#   WORK        where tonight/ and history/ go                   [a new temp dir]
#   KEEP_RUNS   runs kept per lab                                [60]
#   BENCH_ARGS  what to benchmark                                [--all]
#   NIGHTS      newest runs that must agree on a shift           [3]
#   TOLERANCE   how far beyond the earlier level, in percent     [5]
#   PUSH        1 to push the history                            [0]
set -euo pipefail

cd "$(dirname "$0")/.."
REMOTE=${REMOTE:-origin}
WORK=${WORK:-$(mktemp -d -t cnilab-nightly.XXXXXX)}
KEEP_RUNS=${KEEP_RUNS:-60}
BENCH_ARGS=${BENCH_ARGS:---all}
NIGHTS=${NIGHTS:-3}
TOLERANCE=${TOLERANCE:-5}
PUSH=${PUSH:-0}
case "$KEEP_RUNS" in '' | *[!0-9]* | 0) echo "nightly: KEEP_RUNS must be a positive integer, not \"$KEEP_RUNS\"" >&2; exit 2 ;; esac

tonight="$WORK/tonight"
history="$WORK/history"
mkdir -p "$tonight/report" "$history/results"
echo "nightly: working in $WORK"

# 1. The stored history. A remote without the branch is the first night.
REMOTE_URL=$(git remote get-url "$REMOTE" 2>/dev/null || echo "$REMOTE")
if git fetch -q --depth 1 "$REMOTE_URL" bench-history 2>/dev/null; then
  git archive FETCH_HEAD results | tar -x -C "$history"
  echo "nightly: history has $(find "$history/results" -name '*.json' | wc -l) runs"
else
  echo "nightly: no bench-history on $REMOTE yet: tonight starts it"
fi

# 2. Tonight. A lab that fails is in the report; the night goes on.
bench_status=0
# shellcheck disable=SC2086 # BENCH_ARGS is a list of arguments
node dist/cli.js bench $BENCH_ARGS --results-dir "$tonight" || bench_status=$?

# 3. Into the history, newest KEEP_RUNS per lab (file names sort by time).
for dir in "$tonight"/*/; do
  lab=$(basename "$dir")
  [ "$lab" = report ] && continue
  compgen -G "$dir*.json" > /dev/null || continue
  mkdir -p "$history/results/$lab"
  cp "$dir"*.json "$history/results/$lab/"
  ls -1 "$history/results/$lab"/*.json | sort | head -n -"$KEEP_RUNS" | xargs -r rm -f
done

# 4. The gate, over the whole history.
gate_status=0
node dist/cli.js history --results-dir "$history/results" --gate --nights "$NIGHTS" \
  --tolerance "$TOLERANCE" --out "$tonight/report" > "$tonight/report/history.txt" || gate_status=$?
sed -n '/^## Change-point gate/,$p' "$tonight/report/history.txt"

# 5. Keep the history: one commit, no ancestry, so the branch never grows.
if [ "$PUSH" = 1 ]; then
  (
    cd "$history"
    rm -rf .git
    git init -q -b bench-history .
    git add results
    git -c user.name="cnilab nightly" -c user.email="cnilab-nightly@users.noreply.github.com" \
      commit -q --allow-empty -m "bench history: the newest $KEEP_RUNS runs of each lab, up to $(date -u +%F)"
    git push -q -f "$REMOTE_URL" HEAD:bench-history
  )
  echo "nightly: history pushed to bench-history"
fi

echo "nightly: report in $tonight/report (comparison.md, index.html, history.html)"
[ "$gate_status" = 0 ] || { echo "nightly: the change-point gate failed (exit $gate_status)" >&2; exit 1; }
[ "$bench_status" = 0 ] || { echo "nightly: cnilab bench exited $bench_status" >&2; exit "$bench_status"; }
