/*
 * api_check.h — check macros for the black-box native tests (abi, bad_input, large_size): they reach a backend
 * only through its bnb_api table `A`, so messages come from A->last_error_message().
 *   CHECK(cond, fmt, ...)   counts a check; on failure prints file:line, the backend label and the message
 *   bnbt_finish()           prints "PASSED|FAILED: N checks, M failed" and returns the exit code
 */
#ifndef BNB_API_CHECK_H
#define BNB_API_CHECK_H

#include <bnb/bnb.h>
#include <stdio.h>

static int g_failures = 0;
static int g_checks = 0;
static const char* g_backend = "";  /* label printed with each failure (the library under test) */
static const bnb_api* A;            /* the backend under test */

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        ++g_checks;                                                                                                    \
        if (!(cond)) {                                                                                                 \
            ++g_failures;                                                                                              \
            printf("FAIL [%s] %s:%d: ", g_backend, __FILE__, __LINE__);                                                \
            printf(__VA_ARGS__);                                                                                       \
            printf("\n");                                                                                              \
        }                                                                                                              \
    } while (0)

/* The backend's message for the last failed call on this thread (never NULL here, whatever the backend does). */
static inline const char* msg(void) {
    const char* m = A->last_error_message();
    return m ? m : "(NULL)";
}

static inline int bnbt_finish(void) {
    printf("%s: %d checks, %d failed\n", g_failures ? "FAILED" : "PASSED", g_checks, g_failures);
    return g_failures ? 1 : 0;
}

#endif /* BNB_API_CHECK_H */
