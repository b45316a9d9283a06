/*
 * drover - tests/testutil.h: what tests share.
 */
#ifndef DRV_TESTUTIL_H
#define DRV_TESTUTIL_H

#include "consumer.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* The broker bootstrap (DROVER_TEST_BROKERS) and the database URL
 * (DROVER_TEST_DATABASE_URL) of the stack scripts/test.sh started.  When
 * unset, the test process exits 77 (skipped) - or fails, when
 * DROVER_REQUIRE_STACK=1 (scripts/test.sh sets it, so CI never skips). */
const char *drv_test_brokers(void);
const char *drv_test_database_url(void);

/* A name unique to this test run ("<prefix>-<pid>-<counter>"), for topics,
 * groups, schemas and tables, so tests never see each other's data. */
const char *drv_test_unique(const char *prefix);

#endif
