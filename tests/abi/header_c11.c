/* The public header must compile alone as strict C11 with -Wall -Wextra -Werror -pedantic. */
#include <bnb/bnb.h>

int main(void) {
    const bnb_api* api = NULL;
    (void)api;
    return (BNB_ABI_MAJOR >= 1) ? 0 : 1;
}
