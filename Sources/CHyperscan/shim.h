// Vectorscan (Hyperscan's portable fork, the engine Suricata uses): the compile and
// block/stream scanning API as Swift imports it.
#include <hs/hs.h>
