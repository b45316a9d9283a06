/*
 * drover - schema/alloc.c: a per-record allocation budget for avro-c.
 *
 * avro-c allocates while it decodes, trusting lengths it reads from the
 * record: a 64 MiB string length in a 20-byte message allocates 64 MiB
 * (and leaks it when the read then fails), an array<null> with a huge
 * count allocates without reading a byte.  avro-c lets a program replace
 * its allocator (avro_set_allocator); ours is plain realloc/free unless
 * the calling thread has an arena armed, in which case it refuses any
 * request beyond the arena's budget and remembers every live block, so
 * that drv_arena_end() can free what avro-c forgot.
 *
 * The tracking table is an open-addressing hash of live pointers with
 * backward-shift deletion.  It uses plain malloc, never avro-c's.
 */
#include "schema_int.h"

#include <stdlib.h>
#include <string.h>

static _Thread_local drv_arena_t *cur_arena;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static size_t slot_of(const drv_arena_t *a, const void *p) {
        uintptr_t h = (uintptr_t)p;

        h ^= h >> 17;
        h *= 0x9e3779b97f4a7c15ULL;
        return (size_t)(h >> 20) & (a->cap - 1);
}

static struct drv_arena_slot *arena_find(drv_arena_t *a, const void *p) {
        size_t i = slot_of(a, p);

        while (a->tab[i].ptr) {
                if (a->tab[i].ptr == p)
                        return &a->tab[i];
                i = (i + 1) & (a->cap - 1);
        }
        return NULL;
}

static void arena_put(drv_arena_t *a, void *p, size_t size) {
        size_t i = slot_of(a, p);

        while (a->tab[i].ptr)
                i = (i + 1) & (a->cap - 1);
        a->tab[i].ptr = p;
        a->tab[i].size = size;
        a->count++;
        a->used += size;
}

/* Remove slot s, shifting back later entries of its probe run. */
static void arena_del(drv_arena_t *a, struct drv_arena_slot *s) {
        size_t i = (size_t)(s - a->tab), j = i, k;

        a->used -= s->size;
        a->count--;
        a->tab[i].ptr = NULL;
        for (;;) {
                j = (j + 1) & (a->cap - 1);
                if (!a->tab[j].ptr)
                        return;
                k = slot_of(a, a->tab[j].ptr);
                /* move j back to i unless its home lies in (i, j] */
                if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
                        continue;
                a->tab[i] = a->tab[j];
                a->tab[j].ptr = NULL;
                i = j;
        }
}

/* Double the table; -1 if that fails (the request is then refused). */
static int arena_grow(drv_arena_t *a) {
        struct drv_arena_slot *old = a->tab;
        size_t i, old_cap = a->cap;

        a->tab = calloc(old_cap * 2, sizeof(*a->tab));
        if (!a->tab) {
                a->tab = old;
                return -1;
        }
        a->cap = old_cap * 2;
        a->count = 0;
        a->used = 0;
        for (i = 0; i < old_cap; i++)
                if (old[i].ptr)
                        arena_put(a, old[i].ptr, old[i].size);
        if (old != a->inline_tab)
                free(old);
        return 0;
}

static void *arena_realloc(drv_arena_t *a, void *ptr, size_t nsize) {
        struct drv_arena_slot *s = ptr ? arena_find(a, ptr) : NULL;
        size_t old = s ? s->size : 0;
        void *np;

        if (nsize > a->budget || a->used - old > a->budget - nsize ||
            (!s && a->count >= a->max_allocs) ||
            (!s && (a->count + 1) * 2 > a->cap && arena_grow(a))) {
                a->exhausted = 1;
                return NULL;
        }
        if (ptr && !s) /* allocated before the arena: not ours to track */
                return realloc(ptr, nsize);
        np = realloc(ptr, nsize);
        if (!np)
                return NULL;
        if (s)
                arena_del(a, s);
        arena_put(a, np, nsize);
        return np;
}

static void *drv_avro_allocator(void *ud, void *ptr, size_t osize,
                                size_t nsize) {
        drv_arena_t *a = cur_arena;
        struct drv_arena_slot *s;

        (void)ud;
        (void)osize;
        if (nsize == 0) {
                if (a && ptr && (s = arena_find(a, ptr)))
                        arena_del(a, s);
                free(ptr);
                return NULL;
        }
        if (!a)
                return realloc(ptr, nsize);
        return arena_realloc(a, ptr, nsize);
}

static void install(void) {
        avro_set_allocator(drv_avro_allocator, NULL);
}

void drv_arena_install(void) {
        pthread_once(&install_once, install);
}

void drv_arena_begin(drv_arena_t *a, size_t budget, size_t max_allocs) {
        drv_arena_install();
        memset(a, 0, sizeof(*a));
        a->budget = budget;
        a->max_allocs = max_allocs;
        a->cap = sizeof(a->inline_tab) / sizeof(a->inline_tab[0]);
        a->tab = a->inline_tab;
        cur_arena = a;
}

size_t drv_arena_end(drv_arena_t *a) {
        size_t i, leaked = 0;

        cur_arena = NULL;
        for (i = 0; i < a->cap; i++) {
                if (a->tab[i].ptr) {
                        free(a->tab[i].ptr);
                        leaked++;
                }
        }
        if (a->tab != a->inline_tab)
                free(a->tab);
        a->tab = NULL;
        return leaked;
}
