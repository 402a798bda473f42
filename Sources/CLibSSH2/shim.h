#ifndef TETHER_CLIBSSH2_SHIM_H
#define TETHER_CLIBSSH2_SHIM_H
#include <libssh2.h>

/* The libssh2 headers this build was compiled against (LIBSSH2_VERSION_NUM, 0x010b00 =
   1.11.0), for Swift: code that needs a 1.11 call can test it, and `tether --version`
   reports it next to the version linked at run time. */
static inline unsigned long tether_libssh2_header_version(void) { return LIBSSH2_VERSION_NUM; }
#endif
