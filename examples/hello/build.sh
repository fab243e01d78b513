#!/bin/sh
# Build the hello example: dist/artifact.tar.gz holding hello.py and VERSION.
# The version is $KLINK_VERSION when set (Klink's builder sets it), else the VERSION file.
set -eu
cd "$(dirname "$0")"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp hello.py "$stage/"
if [ -n "${KLINK_VERSION:-}" ]; then
    printf '%s\n' "$KLINK_VERSION" > "$stage/VERSION"
elif [ -f VERSION ]; then
    cp VERSION "$stage/VERSION"
fi
mkdir -p dist
tar -czf dist/artifact.tar.gz -C "$stage" .
echo "built dist/artifact.tar.gz"
