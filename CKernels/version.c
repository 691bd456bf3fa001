/* Versions and status descriptions. */
#include "internal.h"

#define RC_STR2(x) #x
#define RC_STR(x) RC_STR2(x)

const char *rnncore_version(void) {
    return RC_STR(RNNCORE_VERSION_MAJOR) "." RC_STR(RNNCORE_VERSION_MINOR) "." RC_STR(RNNCORE_VERSION_PATCH);
}

int rnncore_version_number(void) { return RNNCORE_VERSION_NUMBER; }

int rnncore_abi_version(void) { return RNNCORE_ABI_VERSION; }

const char *rnncore_status_string(rnncore_status status) {
    switch (status) {
    case RNNCORE_OK: return "success";
    case RNNCORE_ERR_NULL_POINTER: return "a required pointer argument is NULL";
    case RNNCORE_ERR_INVALID_SIZE: return "a size argument is zero or negative";
    case RNNCORE_ERR_SIZE_OVERFLOW:
        return "the sizes are too large: a product overflows 64-bit integers, the address space, "
               "or the 32-bit dimensions of the BLAS library";
    case RNNCORE_ERR_INVALID_ARGUMENT: return "a scalar argument is outside its valid range (negative, NaN or infinite)";
    case RNNCORE_ERR_INDEX_OUT_OF_RANGE: return "a token id or target is outside [0, V)";
    case RNNCORE_ERR_NON_FINITE: return "the result is not finite (NaN or infinity): training diverged or the input holds NaN";
    case RNNCORE_ERR_ALIASING: return "an output buffer overlaps an input buffer it must not overlap";
    }
    return "unknown rnncore status code";
}
