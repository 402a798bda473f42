#ifndef TETHER_CLIBSSH2_SHIM_H
#define TETHER_CLIBSSH2_SHIM_H
#include <libssh2.h>
#endif
