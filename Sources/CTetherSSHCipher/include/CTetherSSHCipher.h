#ifndef CTETHER_SSH_CIPHER_H
#define CTETHER_SSH_CIPHER_H

/// Resolves OpenSSL's own EVP functions now (call once, early; it is also done lazily).
/// Returns 1 if the libssh2 AES-CTR speed-up is in effect (this executable's EVP_Cipher
/// is the one libssh2 calls), 0 if not (libssh2 then simply runs at its own speed).
int tether_ssh_cipher_setup(void);

/// Keystream blocks of 4 KiB generated for libssh2's CTR contexts so far (for tests:
/// non-zero once a connection has moved data through the speed-up).
unsigned long tether_ssh_cipher_refills(void);

/// 1 if the calls libssh2's slots now point at give AES-128-CTR's known answers (NIST SP
/// 800-38A F.5.1/F.5.2) when used as libssh2 1.10 uses them — one EVP_Cipher call per
/// block, in place, re-initialized contexts, past keystream refills —; 0 if not, or if
/// the speed-up is not in effect. Setup runs the same check before it keeps the patch.
int tether_ssh_cipher_known_answer(void);

/// Why the speed-up is not in effect (libssh2 imports a cipher-context call this file
/// does not expect, the self-test failed, it was turned off…), or NULL when it is.
const char *tether_ssh_cipher_refusal(void);

#endif
