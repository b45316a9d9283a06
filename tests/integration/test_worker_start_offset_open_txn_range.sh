#!/usr/bin/env bash
# drover - the open-transaction start-offset test with the eager `range`
# assignor.
STRATEGY=range exec bash "$(dirname "$0")/test_worker_start_offset_open_txn.sh"
