#!/usr/bin/env bash
# Mutation testing of the engine's core with cargo-mutants: checkpointing, failure policies,
# strategies, the runtime loop, the handling of a batch, the guards around user code and the
# fast-path scanner with its base64 decoding (the files and tests are listed in .cargo/mutants.toml). Each mutant is one
# deliberate bug; a mutant the tests do not catch is a bug they would let through.
#
#   bash scripts/mutants.sh              every mutant (about 330; 1-2 hours on 2 cores), then the
#                                        score and the surviving mutants are written into README.md
#   bash scripts/mutants.sh --iterate    after a full run: only the mutants not caught then (or new
#                                        since), e.g. once tests were added; the score is over both
#                                        runs and is written into README.md too
#   bash scripts/mutants.sh --report     only the score of the last run, into README.md again
#   bash scripts/mutants.sh --shard K/N  shard K of N (0-based): split the full run over machines
#   bash scripts/mutants.sh --diff [REV] only the mutants in lines changed since REV (default
#                                        HEAD~1): what CI runs; fails if one survives
#                                        that .cargo/mutants-equivalent.txt does not list
#
# Installs cargo-mutants if missing. Results: target/mutants/mutants.out/ (caught.txt,
# missed.txt, timeout.txt, unviable.txt, outcomes.json).
set -euo pipefail
cd "$(dirname "$0")/.."
# Quicker builds and property runs per mutant; the tests themselves are the same.
export CARGO_PROFILE_DEV_DEBUG=0 KCL_PROPTEST_CASES=128
out=target/mutants
args=(-p kcl-core --baseline skip --timeout 120 --build-timeout 600 -j "${KCL_MUTANTS_JOBS:-2}" -o "$out")
mode=full
case "${1:-}" in
  --shard) args+=(--shard "$2"); mode=shard ;;
  --iterate)
    [ -f "$out/mutants.out/outcomes.json" ] || { echo "no earlier run in $out: run the full one first" >&2; exit 2; }
    # What earlier runs could not build: cargo-mutants lists those with the caught ones.
    { cat "$out/mutants.out/unviable.txt" "$out/unviable-before.txt" 2>/dev/null || true; } | sort -u > "$out/unviable-all.txt"
    mv "$out/unviable-all.txt" "$out/unviable-before.txt"
    args+=(--iterate); mode=iterate ;;
  --diff)
    base=${2:-HEAD~1}
    if ! git rev-parse --verify --quiet "$base^{commit}" >/dev/null; then
      echo "no commit $base in this checkout (shallow clone?): no mutant to run"
      exit 0
    fi
    mkdir -p "$out"
    git diff "$base" -- kcl-core/src > "$out/changes.diff"
    if ! grep -q '^+' "$out/changes.diff"; then
      echo "no change to kcl-core/src since $base: no mutant to run"
      exit 0
    fi
    args+=(--in-diff "$out/changes.diff"); mode=diff ;;
  --report) mode=report ;;
  "") rm -f "$out/unviable-before.txt" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
status=0
if [ "$mode" != report ]; then
  command -v cargo-mutants >/dev/null || cargo install cargo-mutants --locked
  cargo mutants "${args[@]}" || status=$?
fi
results=$out/mutants.out
# cargo-mutants exits 2 when mutants were missed, 3 on timeouts; anything else is a failure to run.
case "$status" in 0|2|3) ;; *) echo "cargo mutants failed (exit status $status)" >&2; exit "$status" ;; esac
count() { if [ -f "$results/$1.txt" ]; then grep -c . "$results/$1.txt" || true; else echo 0; fi; }
caught=$(count caught); missed=$(count missed); timeout=$(count timeout); unviable=$(count unviable)
if [ -s "$results/previously_caught.txt" ]; then
  # Caught (or unviable) in earlier runs, and not tested again now.
  before=$(grep -c . "$results/previously_caught.txt" || true)
  before_unviable=$(grep -cxFf "$results/previously_caught.txt" "$out/unviable-before.txt" || true)
  caught=$((caught + before - before_unviable))
  unviable=$((unviable + before_unviable))
fi
viable=$((caught + missed + timeout))
score=$(python3 -c "print(f'{100 * ($caught + $timeout) / max($viable, 1):.1f}')")
summary="$viable viable mutants (and $unviable that do not build): $caught caught, $timeout caught by a timeout, $missed missed: score $score%"
echo "== $summary"
if [ "$missed" != 0 ]; then
  echo "== missed:"
  sed 's/^/   /' "$results/missed.txt"
fi
if [ "$mode" = full ] || [ "$mode" = iterate ] || [ "$mode" = report ]; then
  python3 - "$summary" "$results/missed.txt" <<'PY'
import pathlib, re, sys, datetime
summary, missed_file = sys.argv[1], pathlib.Path(sys.argv[2])
missed = missed_file.read_text().split("\n") if missed_file.exists() else []
missed = [m for m in missed if m.strip()]
lines = [f"Last measured ({datetime.date.today().isoformat()}, `bash scripts/mutants.sh`): {summary}."]
if missed:
    lines.append("Surviving mutants (each explained in `.cargo/mutants-equivalent.txt`, or to be killed by a new test):")
    lines += [f"- `{m}`" for m in missed]
block = "\n".join("  " + line for line in lines)
readme = pathlib.Path("README.md")
text = readme.read_text()
new = re.sub(r"(<!-- mutants:begin -->\n).*?(\n[ ]*<!-- mutants:end -->)", lambda m: m.group(1) + block + m.group(2), text, flags=re.S)
if new == text and block not in text:
    sys.exit("README.md has no <!-- mutants:begin --> ... <!-- mutants:end --> block")
readme.write_text(new)
print("README.md updated")
PY
fi
if [ "$mode" = diff ] && [ "$missed" != 0 ]; then
  # Survivors listed as equivalent (by name without line:column) pass; any other fails.
  unexplained=$(sed -E 's/^([^:]+):[0-9]+:[0-9]+: /\1: /' "$results/missed.txt" \
    | grep -vxFf <(grep -v '^#' .cargo/mutants-equivalent.txt | grep .) || true)
  if [ -n "$unexplained" ]; then
    echo "mutants in the changed lines survived: add a test that catches each, or, if no test can tell it from the original, list it with the reason in .cargo/mutants-equivalent.txt:" >&2
    printf '%s\n' "$unexplained" >&2
    exit 1
  fi
  echo "every surviving mutant in the changed lines is listed as equivalent in .cargo/mutants-equivalent.txt"
fi
