/* A program that uses an installed RNNCore: checks that the header and the library agree. */
#include <rnncore.h>
#include <stdio.h>

int main(void) {
    printf("rnncore %s, ABI %d\n", rnncore_version(), rnncore_abi_version());
    float h[2];
    const float x[2] = {0.5f, -0.5f}, w = 1.0f, u = 0.0f;
    if (rnncore_rnn_step_forward(h, x, NULL, &w, &u, NULL, 2, 1, 1) != RNNCORE_OK) return 1;
    return rnncore_version_number() == RNNCORE_VERSION_NUMBER && rnncore_abi_version() == RNNCORE_ABI_VERSION ? 0 : 1;
}
