/*
 * drover - schema/alloc.c: a per-record allocation budget for avro-c.
 *
 * avro-c allocates while it decodes, trusting lengths it reads from the
 * record: a 64 MiB string length in a 20-byte message allocates 64 MiB,
 * an array<null> with a huge count allocates without reading a byte.
 * drv_datum_check() refuses such records before avro-c sees them; this
 * allocator is the second line.  avro-c lets a program replace its
 * allocator (avro_set_allocator) and passes the old size of every block
 * it frees or grows, so the net bytes allocated while a thread has an
 * arena armed are counted exactly, and a request that would take them
 * past the budget fails (avro-c reports ENOMEM).  Outside an arena the
 * allocator is plain realloc/free.
 */
#include "schema_int.h"

#include <stdlib.h>

static _Thread_local drv_arena_t *cur_arena;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static void *drv_avro_allocator(void *ud, void *ptr, size_t osize,
                                size_t nsize) {
        drv_arena_t *a = cur_arena;
        void *np;

        (void)ud;
        if (nsize == 0) {
                if (a && ptr)
                        a->net -= (int64_t)osize;
                free(ptr);
                return NULL;
        }
        if (!a)
                return realloc(ptr, nsize);
        if (!ptr)
                osize = 0;
        if (nsize > a->budget ||
            a->net + (int64_t)nsize - (int64_t)osize > (int64_t)a->budget) {
                a->exhausted = 1;
                return NULL;
        }
        if ((np = realloc(ptr, nsize)))
                a->net += (int64_t)nsize - (int64_t)osize;
        return np;
}

static void install(void) {
        avro_set_allocator(drv_avro_allocator, NULL);
}

void drv_arena_install(void) {
        pthread_once(&install_once, install);
}

void drv_arena_begin(drv_arena_t *a, size_t budget) {
        drv_arena_install();
        a->budget = budget;
        a->net = 0;
        a->exhausted = 0;
        cur_arena = a;
}

void drv_arena_end(drv_arena_t *a) {
        (void)a;
        cur_arena = NULL;
}
