# drover - tests/integration/tap_lib.sh: source it.  The result lines of
# the shell tests that print "ok - ..." / "not ok - ...".

# skip WHY: exit 77 (ctest: skipped), or fail under DROVER_REQUIRE_STACK=1
# (scripts/test.sh), where a missing stack or tool is an error.
skip() {
  if [ "${DROVER_REQUIRE_STACK:-}" = 1 ]; then
    echo "not ok - $*" >&2
    exit 1
  fi
  echo "skip: $*" >&2
  exit 77
}
