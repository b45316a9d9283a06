#!/usr/bin/env bash
# drover - ctest label "chaos": the small chaos run (tests/chaos/run.sh,
# 2,000 tasks, 3 brokers, PostgreSQL, 3 workers, faults) against the
# drover binary of this build.  It starts and stops its own stack.
exec "$(dirname "$0")/run.sh" --build "${DROVER_BUILD_DIR:?}"
