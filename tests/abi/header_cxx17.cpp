// The public header must compile alone as strict C++17 with -Wall -Wextra -Werror -pedantic.
#include <bnb/bnb.h>

int main() {
    const bnb_api* api = nullptr;
    static_cast<void>(api);
    return (BNB_ABI_MAJOR >= 1) ? 0 : 1;
}
