#ifndef CTETHER_SSH_CIPHER_H
#define CTETHER_SSH_CIPHER_H

/// Resolves OpenSSL's own EVP functions now (call once, early; it is also done lazily).
/// Returns 1 if the libssh2 AES-CTR speed-up is in effect (this executable's EVP_Cipher
/// is the one libssh2 calls), 0 if not (libssh2 then simply runs at its own speed).
int tether_ssh_cipher_setup(void);

/// Keystream blocks of 4 KiB generated for libssh2's CTR contexts so far (for tests:
/// non-zero once a connection has moved data through the speed-up).
unsigned long tether_ssh_cipher_refills(void);

#endif
