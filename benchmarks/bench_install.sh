#!/usr/bin/env bash
# Fresh install to first result, as `make clusters` does it on a fresh clone: a new venv,
# pip upgraded, the package installed (no pip cache), the engine compiled, the demo run.
# Compares two commits of this repository: BEFORE (installs '.[test]', as `make clusters`
# did before issue 26) and AFTER (installs '.', what a run needs).
#   bash benchmarks/bench_install.sh BEFORE_COMMIT AFTER_COMMIT   (results: benchmarks/results/install.md)
set -euo pipefail
before=${1:?before commit}; after=${2:?after commit}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for which in after before; do
  commit=$after; spec=.; [ $which = before ] && { commit=$before; spec=".[test]"; }
  mkdir "$work/$which" && git -C "$repo" archive "$commit" | tar -x -C "$work/$which"
  python3 -m venv "$work/venv-$which"
  t0=$(date +%s.%N)
  "$work/venv-$which/bin/python" -m pip install --quiet --no-cache-dir --upgrade pip 2>/dev/null
  (cd "$work/$which" && "$work/venv-$which/bin/python" -m pip install --quiet --no-cache-dir -e "$spec" 2>/dev/null)
  t1=$(date +%s.%N)
  (cd "$work/$which" && "$work/venv-$which/bin/python" -c "from cluster.engine.dbscan import warm_up; warm_up()")
  t2=$(date +%s.%N)
  (cd "$work/$which" && "$work/venv-$which/bin/cluster" -q run --out "$work/out-$which")
  t3=$(date +%s.%N)
  printf '%s (%s, pip install -e "%s"): install %.0f s, compile %.0f s, first run %.0f s, total %.0f s; venv %s MB\n' \
    "$which" "$commit" "$spec" "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$(echo "$t3 - $t2" | bc)" \
    "$(echo "$t3 - $t0" | bc)" "$(du -sm "$work/venv-$which" | cut -f1)"
done
