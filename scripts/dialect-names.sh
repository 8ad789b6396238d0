#!/usr/bin/env bash
# Lists, for each dialect, the source files outside its own crate that name it (in code,
# strings or comments), and fails when one is named in more than 7 of them (issue 13's
# rule: the workspace Cargo.toml, the roster crate (its Cargo.toml and lib.rs),
# chat-client's catalogue, conformance's dialect module and list, an example). Tests,
# docs, specs and scripts are not counted.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=7
status=0
for crate in crates/dialect-*/; do
  name=$(basename "$crate"); name=${name#dialect-}
  [ "$name" = kit ] && continue
  snake=${name//-/_}
  camel=$(echo "$name" | sed -E 's/(^|-)([a-z])/\U\2/g')
  files=$(git ls-files -co --exclude-standard -- 'Cargo.toml' '*/Cargo.toml' '*.rs' '*.js' '*.mjs' '*.ts' \
    | grep -v "^crates/dialect-$name/" | grep -vE '(^|/)tests?/|/tests\.rs$|/benches/' \
    | xargs grep -lE "$name|$snake|$camel" 2>/dev/null || true)
  n=$(printf '%s' "$files" | grep -c . || true)
  printf '%-16s %2d files\n' "$name" "$n"
  printf '%s\n' "$files" | sed '/^$/d; s/^/    /'
  [ "$n" -le "$limit" ] || status=1
done
exit $status
