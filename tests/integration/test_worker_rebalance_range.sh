#!/usr/bin/env bash
# drover - the rebalance test with the eager `range` assignor.
STRATEGY=range exec bash "$(dirname "$0")/test_worker_rebalance.sh"
