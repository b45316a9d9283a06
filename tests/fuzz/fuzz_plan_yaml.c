/*
 * drover - tests/fuzz/fuzz_plan_yaml.c: libFuzzer target for plan parsing.
 *
 * The first byte picks the path: even -> the bytes are YAML (a
 * catalog-info.yaml: every document built and validated, as the local
 * catalog does); odd -> the bytes are a catalog API JSON body (as the
 * Backstage client gets it).  Every plan that loads must also validate,
 * serialise and expose its steps; nothing may leak or crash.
 */
#include "transforms.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void exercise(drv_plan_t *plan) {
        char errstr[512];
        json_t *j;
        size_t i;

        if (drv_plan_validate(plan, 1, errstr, sizeof(errstr)) != DRV_OK)
                abort(); /* a loaded plan is a valid plan */
        j = drv_plan_to_json(plan);
        json_decref(j);
        for (i = 0; i < plan->steps_cnt; i++) {
                const drv_step_t *st = &plan->steps[i];
                if (!drv_op_name(st->op) || strlen(st->fingerprint) != 64)
                        abort();
                (void)drv_step_key(st);
                (void)drv_step_batch_size(st);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char errstr[512];
        drv_plan_t **plans = NULL, *plan = NULL;
        size_t cnt = 0, i;

        if (size < 1 || size > 64 * 1024)
                return 0;
        if ((data[0] & 1) == 0) {
                if (drv_plan_load_buf((const char *)data + 1, size - 1,
                                      "fuzz.yaml", &plans, &cnt, errstr,
                                      sizeof(errstr)) == DRV_OK)
                        for (i = 0; i < cnt; i++)
                                exercise(plans[i]);
                drv_plan_array_free(plans, cnt);
        } else {
                json_t *entity =
                    json_loadb((const char *)data + 1, size - 1, 0, NULL);
                if (entity && drv_plan_from_json(entity, "fuzz", &plan, errstr,
                                                 sizeof(errstr)) == DRV_OK)
                        exercise(plan);
                drv_plan_release(plan);
                json_decref(entity);
        }
        return 0;
}
