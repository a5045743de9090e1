#!/usr/bin/env bash
# The nbdev-ci checks: notebooks are clean (nbdev_clean changes nothing) and the package is in sync
# with them (nbdev_export changes nothing). Works on a dirty work tree: compares checksums, not git.
set -euo pipefail
bin=${1:-.venv/bin}
sums() { find nbs nynorsk_asr -name '*.ipynb' -o -name '*.py' | sort | xargs md5sum; }
before=$(sums)
"$bin/nbdev_export"
"$bin/nbdev_clean"
after=$(sums)
if [ "$before" != "$after" ]; then
  echo "nbdev_export/nbdev_clean changed these files; commit the cleaned, exported result:" >&2
  diff <(echo "$before") <(echo "$after") | sed -n 's/^> [0-9a-f]*  /  /p' >&2
  exit 1
fi
echo "notebooks clean, package in sync"
