/* Thread-local error messages and the log sink. Every failing entry point calls bnb_fail, so the message a caller
 * reads through last_error_message always names the backend, the op and what was wrong. */
#include "bnb_common.h"

#include <stdio.h>
#include <string.h>

#if defined(_MSC_VER)
#define BNB_THREAD_LOCAL __declspec(thread)
#else
#define BNB_THREAD_LOCAL _Thread_local
#endif

enum { BNB_MESSAGE_CAPACITY = 1024 };

static BNB_THREAD_LOCAL char thread_message[BNB_MESSAGE_CAPACITY];

bnb_status bnb_failv(bnb_status status, const char* op, const char* fmt, va_list args) {
    int prefix = snprintf(thread_message, sizeof thread_message, "bnb_%s: %s: ", bnb_backend_name, op ? op : "?");
    if (prefix < 0) prefix = 0;
    if ((size_t)prefix < sizeof thread_message) {
        vsnprintf(thread_message + prefix, sizeof thread_message - (size_t)prefix, fmt, args);
    }
    bnb_log(BNB_LOG_DEBUG, "%s", thread_message);
    return status;
}

bnb_status bnb_fail(bnb_status status, const char* op, const char* fmt, ...) {
    va_list args;
    va_start(args, fmt);
    bnb_status result = bnb_failv(status, op, fmt, args);
    va_end(args);
    return result;
}

const char* bnb_last_error(void) { return thread_message; }

/* The log sink is process-wide. It is swapped rarely (set_log_callback) and read on every log call; a torn read of
 * the (callback, user) pair is avoided by publishing both through one pointer to an immutable record. */
typedef struct log_sink {
    bnb_log_fn callback;
    void* user_data;
} log_sink;

static log_sink sinks[2];
static log_sink* volatile current_sink = NULL;
static int next_sink = 0;

bnb_status bnb_set_log_callback_impl(bnb_log_fn callback, void* user_data) {
    if (callback == NULL) {
        current_sink = NULL;
        return BNB_OK;
    }
    log_sink* sink = &sinks[next_sink];
    next_sink ^= 1;
    sink->callback = callback;
    sink->user_data = user_data;
    current_sink = sink;
    return BNB_OK;
}

void bnb_log(int32_t level, const char* fmt, ...) {
    log_sink* sink = current_sink;
    if (sink == NULL) return;
    char line[BNB_MESSAGE_CAPACITY];
    va_list args;
    va_start(args, fmt);
    vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    sink->callback(sink->user_data, level, line);
}
