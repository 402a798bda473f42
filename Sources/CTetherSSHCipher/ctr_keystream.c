/*
 * Why this file exists: libssh2 1.10 encrypts and decrypts one 16-byte block per
 * EVP_Cipher() call (transport.c's decrypt() and send path call crypt() per block, and
 * openssl.c's _libssh2_cipher_crypt() hands each block to EVP_Cipher). With OpenSSL 3
 * every call pays the provider dispatch plus an unpipelined single-block AES: on the
 * receiving side that is a large share of the client's CPU per byte, and a main reason a
 * libssh2 client reads slower than OpenSSH (1.11 batches blocks; Debian 12 ships 1.10).
 *
 * In CTR mode the keystream does not depend on the data. So libssh2's own calls of
 * EVP_CipherInit, EVP_Cipher and EVP_CIPHER_CTX_free — and only libssh2's: its GOT slots
 * for them are redirected here — are intercepted. For a context libssh2 initialized in
 * CTR mode, keystream is asked of OpenSSL 4 KiB at a time (one bulk call: encrypting
 * zeros yields the keystream) and each block is XORed with the next bytes of it: output
 * bit for bit what OpenSSL would have produced; only the context's counter runs ahead by
 * keystream that nothing but this file ever reads. Other modes pass straight through.
 * If libssh2 can't be found or patched, nothing changes and libssh2 runs at its own pace
 * (as with TETHER_SSH_CIPHER_BATCHING=0).
 *
 * Threads: libssh2 uses a session — and its two cipher contexts — from one thread at a
 * time, so a context's keystream needs no lock. Finding it does: registered contexts
 * live in a small mutex-guarded table, and each thread caches its last two answers
 * (including "not ours") until the table changes (`epoch`).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include "CTetherSSHCipher.h"

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;
typedef struct evp_cipher_st EVP_CIPHER;

typedef int (*cipher_fn)(EVP_CIPHER_CTX *, unsigned char *, const unsigned char *, unsigned int);
typedef int (*init_fn)(EVP_CIPHER_CTX *, const EVP_CIPHER *, const unsigned char *, const unsigned char *, int);
typedef void (*free_fn)(EVP_CIPHER_CTX *);
typedef unsigned long (*flags_fn)(const EVP_CIPHER *);

/* openssl/evp.h: EVP_CIPH_MODE, EVP_CIPH_CTR_MODE */
#define TETHER_EVP_CIPH_MODE 0xF0007UL
#define TETHER_EVP_CIPH_CTR_MODE 0x5UL

#define KEYSTREAM_BYTES 4096

struct keystream {
    unsigned int used;      /* bytes of `bytes` consumed */
    unsigned char bytes[KEYSTREAM_BYTES] __attribute__((aligned(64)));
};

struct registered {
    EVP_CIPHER_CTX *ctx;
    struct keystream *keystream;
};

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static cipher_fn real_cipher;
static init_fn real_init;
static free_fn real_free;
static flags_fn real_cipher_flags;
static int patched;

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct registered *table;
static size_t table_count, table_capacity;
static atomic_ulong epoch = 1;
static atomic_ulong refills;
static const unsigned char zeros[KEYSTREAM_BYTES];

/* The last two lookups of this thread; keystream NULL = not a libssh2 CTR context.
 * initial-exec: plain %fs-relative loads, no __tls_get_addr call per block. */
#define FAST_TLS __attribute__((tls_model("initial-exec")))
static __thread FAST_TLS struct {
    EVP_CIPHER_CTX *ctx;
    struct keystream *keystream;
    unsigned long epoch;
} recent[2];
static __thread FAST_TLS unsigned int recent_next;

unsigned long tether_ssh_cipher_refills(void) {
    return atomic_load_explicit(&refills, memory_order_relaxed);
}

/* MARK: The keystream table */

static void forget_locked(EVP_CIPHER_CTX *ctx) {
    for (size_t i = 0; i < table_count; i++) {
        if (table[i].ctx == ctx) {
            free(table[i].keystream);
            table[i] = table[--table_count];
            atomic_fetch_add_explicit(&epoch, 1, memory_order_release);
            return;
        }
    }
}

static void forget(EVP_CIPHER_CTX *ctx) {
    pthread_mutex_lock(&table_lock);
    forget_locked(ctx);
    pthread_mutex_unlock(&table_lock);
}

static void remember(EVP_CIPHER_CTX *ctx) {
    struct keystream *keystream = calloc(1, sizeof *keystream);
    pthread_mutex_lock(&table_lock);
    forget_locked(ctx);
    if (keystream && table_count == table_capacity) {
        size_t capacity = table_capacity ? table_capacity * 2 : 16;
        struct registered *grown = realloc(table, capacity * sizeof *table);
        if (grown) {
            table = grown;
            table_capacity = capacity;
        }
    }
    if (keystream && table_count < table_capacity) {
        keystream->used = KEYSTREAM_BYTES;  /* empty: the first use fills it */
        table[table_count++] = (struct registered){ ctx, keystream };
        atomic_fetch_add_explicit(&epoch, 1, memory_order_release);
    } else {
        free(keystream);  /* no memory: this context simply isn't sped up */
    }
    pthread_mutex_unlock(&table_lock);
}

static struct keystream *find(EVP_CIPHER_CTX *ctx) {
    unsigned long now = atomic_load_explicit(&epoch, memory_order_acquire);
    for (int i = 0; i < 2; i++)
        if (recent[i].ctx == ctx && recent[i].epoch == now) return recent[i].keystream;
    struct keystream *keystream = NULL;
    pthread_mutex_lock(&table_lock);
    for (size_t i = 0; i < table_count; i++)
        if (table[i].ctx == ctx) keystream = table[i].keystream;
    pthread_mutex_unlock(&table_lock);
    unsigned int slot = recent_next++ & 1;
    recent[slot].ctx = ctx;
    recent[slot].keystream = keystream;
    recent[slot].epoch = now;
    return keystream;
}

/* MARK: What libssh2 calls instead of OpenSSL */

static int tether_cipher_init(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher, const unsigned char *key,
                              const unsigned char *iv, int enc) {
    int ok = real_init(ctx, cipher, key, iv, enc);
    if (!ctx) return ok;
    if (ok == 1 && cipher && key && iv
        && (real_cipher_flags(cipher) & TETHER_EVP_CIPH_MODE) == TETHER_EVP_CIPH_CTR_MODE) {
        remember(ctx);
    } else {
        forget(ctx);  /* re-initialized otherwise: an old keystream no longer applies */
    }
    return ok;
}

static int tether_cipher(EVP_CIPHER_CTX *ctx, unsigned char *out, const unsigned char *in, unsigned int inl) {
    struct keystream *keystream = ctx && in && out ? find(ctx) : NULL;
    if (!keystream) return real_cipher(ctx, out, in, inl);
    unsigned int done = 0;
    while (done < inl) {
        if (keystream->used == KEYSTREAM_BYTES) {
            if (real_cipher(ctx, keystream->bytes, zeros, KEYSTREAM_BYTES) < 0) return -1;
            keystream->used = 0;
            atomic_fetch_add_explicit(&refills, 1, memory_order_relaxed);
        }
        unsigned int n = inl - done;
        if (n > KEYSTREAM_BYTES - keystream->used) n = KEYSTREAM_BYTES - keystream->used;
        const unsigned char *k = keystream->bytes + keystream->used;
        unsigned int i = 0;
#if defined(__SSE2__)
        /* 16 bytes per store, not two 8-byte ones: libssh2 copies each block out again
         * at once with one 16-byte load, which a pair of smaller stores can't forward
         * (a store-forwarding stall per block, a large share of the client's CPU). */
        for (; i + 16 <= n; i += 16) {
            __m128i a = _mm_loadu_si128((const __m128i *)(in + done + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(k + i));
            _mm_storeu_si128((__m128i *)(out + done + i), _mm_xor_si128(a, b));
        }
#endif
        for (; i + 8 <= n; i += 8) {
            uint64_t a, b;
            memcpy(&a, in + done + i, 8);
            memcpy(&b, k + i, 8);
            a ^= b;
            memcpy(out + done + i, &a, 8);
        }
        for (; i < n; i++) out[done + i] = in[done + i] ^ k[i];
        keystream->used += n;
        done += n;
    }
    return (int)inl;
}

static void tether_cipher_ctx_free(EVP_CIPHER_CTX *ctx) {
    if (ctx) forget(ctx);
    real_free(ctx);
}

/* MARK: Redirecting libssh2's GOT slots */

struct slot_search {
    const char *names[3];
    void **slots[3];
    int found_library;
};

/* The address a dynamic entry points at (glibc has usually relocated it already). */
static uintptr_t dynamic_address(ElfW(Addr) base, ElfW(Addr) value) {
    return value < base ? base + value : value;
}

static int find_slots(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct slot_search *search = data;
    const char *name = info->dlpi_name ? strrchr(info->dlpi_name, '/') : NULL;
    name = name ? name + 1 : info->dlpi_name;
    if (!name || strncmp(name, "libssh2.so", 10) != 0) return 0;
    search->found_library = 1;
    const ElfW(Dyn) *dynamic = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            dynamic = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    if (!dynamic) return 1;
    const ElfW(Rela) *relocations = NULL;
    size_t relocation_bytes = 0;
    const ElfW(Sym) *symbols = NULL;
    const char *strings = NULL;
    for (const ElfW(Dyn) *entry = dynamic; entry->d_tag != DT_NULL; entry++) {
        switch (entry->d_tag) {
        case DT_JMPREL: relocations = (const ElfW(Rela) *)dynamic_address(info->dlpi_addr, entry->d_un.d_ptr); break;
        case DT_PLTRELSZ: relocation_bytes = entry->d_un.d_val; break;
        case DT_SYMTAB: symbols = (const ElfW(Sym) *)dynamic_address(info->dlpi_addr, entry->d_un.d_ptr); break;
        case DT_STRTAB: strings = (const char *)dynamic_address(info->dlpi_addr, entry->d_un.d_ptr); break;
        }
    }
    if (!relocations || !symbols || !strings) return 1;
    for (size_t i = 0; i < relocation_bytes / sizeof *relocations; i++) {
        if (ELF64_R_TYPE(relocations[i].r_info) != R_X86_64_JUMP_SLOT) continue;
        const char *symbol = strings + symbols[ELF64_R_SYM(relocations[i].r_info)].st_name;
        for (int k = 0; k < 3; k++)
            if (strcmp(symbol, search->names[k]) == 0)
                search->slots[k] = (void **)(info->dlpi_addr + relocations[i].r_offset);
    }
    return 1;
}

/* Writes `value` into a GOT slot that RELRO has made read-only. */
static int overwrite(void **slot, void *value) {
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)slot & ~(uintptr_t)(page - 1);
    uintptr_t end = ((uintptr_t)(slot + 1) + page - 1) & ~(uintptr_t)(page - 1);
    if (mprotect((void *)start, end - start, PROT_READ | PROT_WRITE) != 0) return 0;
    __atomic_store_n(slot, value, __ATOMIC_SEQ_CST);
    mprotect((void *)start, end - start, PROT_READ);
    return 1;
}

static void setup(void) {
#if defined(__x86_64__)
    /* An escape hatch, and a way to measure what this is worth. */
    const char *off = getenv("TETHER_SSH_CIPHER_BATCHING");
    if (off && (strcmp(off, "0") == 0 || strcmp(off, "off") == 0)) return;
    real_cipher = (cipher_fn)dlsym(RTLD_DEFAULT, "EVP_Cipher");
    real_init = (init_fn)dlsym(RTLD_DEFAULT, "EVP_CipherInit");
    real_free = (free_fn)dlsym(RTLD_DEFAULT, "EVP_CIPHER_CTX_free");
    real_cipher_flags = (flags_fn)dlsym(RTLD_DEFAULT, "EVP_CIPHER_get_flags");
    if (!real_cipher || !real_init || !real_free || !real_cipher_flags) return;
    struct slot_search search = { { "EVP_CipherInit", "EVP_Cipher", "EVP_CIPHER_CTX_free" }, { 0 }, 0 };
    dl_iterate_phdr(find_slots, &search);
    if (!search.slots[0] || !search.slots[1] || !search.slots[2]) return;
    /* Init and free first: a context is only ever registered by our init. */
    if (!overwrite(search.slots[0], (void *)tether_cipher_init)) return;
    if (!overwrite(search.slots[2], (void *)tether_cipher_ctx_free)) return;
    if (!overwrite(search.slots[1], (void *)tether_cipher)) return;
    patched = 1;
#endif
}

int tether_ssh_cipher_setup(void) {
    pthread_once(&setup_once, setup);
    return patched;
}
