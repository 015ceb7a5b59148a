/*
 * unit_check.h — check macros for the white-box unit tests that link bnb_common directly (quant_unit_test,
 * int8_optim_unit_test): messages come from bnb_last_error(), and the test itself names the backend.
 *   CHECK(cond)                        counts a check; prints file:line and the condition on failure
 *   CHECK_FAILS(call, status, needle)  the call must fail with `status` and a message containing `needle`
 *   CHECK_OK(call)                     the call must return BNB_OK
 *   bnbt_finish(name)                  prints "<name>: N checks, M failed" and returns the exit code
 */
#ifndef BNB_UNIT_CHECK_H
#define BNB_UNIT_CHECK_H

#include "bnb_common.h"

#include <stdio.h>
#include <string.h>

const char bnb_backend_name[] = "cpu_ref"; /* bnb_common's messages name the backend */

static int g_checks, g_failures;

#define CHECK(cond)                                                                                                \
    do {                                                                                                           \
        ++g_checks;                                                                                                \
        if (!(cond)) {                                                                                             \
            ++g_failures;                                                                                          \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                                                 \
        }                                                                                                          \
    } while (0)

#define CHECK_FAILS(call, status, needle)                                                                          \
    do {                                                                                                           \
        const bnb_status st_ = (call);                                                                             \
        ++g_checks;                                                                                                \
        if (st_ != (status) || strstr(bnb_last_error(), (needle)) == NULL) {                                      \
            ++g_failures;                                                                                          \
            printf("FAIL %s:%d: %s\n  got status %d, message \"%s\"; wanted status %d with \"%s\"\n", __FILE__,   \
                   __LINE__, #call, (int)st_, bnb_last_error(), (int)(status), (needle));                         \
        }                                                                                                          \
    } while (0)

#define CHECK_OK(call)                                                                                             \
    do {                                                                                                           \
        const bnb_status st_ = (call);                                                                             \
        ++g_checks;                                                                                                \
        if (st_ != BNB_OK) {                                                                                       \
            ++g_failures;                                                                                          \
            printf("FAIL %s:%d: %s -> %d \"%s\"\n", __FILE__, __LINE__, #call, (int)st_, bnb_last_error());        \
        }                                                                                                          \
    } while (0)

static inline int bnbt_finish(const char* name) {
    printf("%s: %d checks, %d failed\n", name, g_checks, g_failures);
    return g_failures == 0 ? 0 : 1;
}

#endif /* BNB_UNIT_CHECK_H */
