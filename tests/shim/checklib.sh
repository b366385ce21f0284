# Sourced by the tests/shim/check_*.sh scripts that run a buggy program and compare its
# report: strict mode, a scratch directory removed at exit ($tmp), a failure counter
# (bad MESSAGE), and the ending (passed NAME: "NAME: ok" and status 0, or status 1).
set -u
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
passed() {
    [ "$fails" -eq 0 ] && echo "$1: ok"
    exit $((fails != 0))
}
