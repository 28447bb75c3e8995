#!/usr/bin/env bash
# Copy the collection's files (tracked and new, minus git-ignored ones) to
# .build/ansible_collections/cloudkit/provisioning: ansible-test only runs from a
# path of that shape and needs the dependency collections beside it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dest=.build/ansible_collections/cloudkit/provisioning
rm -rf "$dest"
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -cf - -T - | tar -xf - -C "$dest"
# ansible-test lists files with git from the nearest .git upwards; give the copy its own
# (untracked files are listed) so it does not see the enclosing repo, where .build is ignored.
git init -q "$dest"
