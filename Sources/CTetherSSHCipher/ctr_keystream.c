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
#include <stdio.h>
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
static void setup(void);
/* Why the speed-up is not in effect (NULL when it is), for `tether --version -v` and tests. */
static const char *refusal = "not set up yet";
static void **patched_slots[3];
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
#if defined(__SSE2__)
    /* libssh2 1.10's call: one block, while the keystream lasts — one 16-byte XOR and
     * nothing else (62.5 million calls per GB: the general loop below cost twice this). */
    if (inl == 16 && keystream->used <= KEYSTREAM_BYTES - 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)in);
        __m128i b = _mm_loadu_si128((const __m128i *)(keystream->bytes + keystream->used));
        _mm_storeu_si128((__m128i *)out, _mm_xor_si128(a, b));
        keystream->used += 16;
        return 16;
    }
#endif
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
    /* An OpenSSL cipher-context call libssh2 imports that this file does not expect
     * (NULL: none). Everything here rests on libssh2 touching a CTR context only through
     * EVP_CIPHER_CTX_new, EVP_CipherInit, EVP_Cipher and EVP_CIPHER_CTX_free: a libssh2
     * that also reads the IV, copies a context or calls EVP_CipherUpdate would see the
     * counter run ahead, so then nothing is patched. */
    const char *unexpected;
};

/* The cipher-context calls libssh2 1.10 makes (openssl.c), and the only ones it may. */
static const char *const expected_cipher_calls[] = {
    "EVP_CIPHER_CTX_new", "EVP_CIPHER_CTX_free", "EVP_CipherInit", "EVP_Cipher", NULL
};

/* Whether `symbol` acts on an EVP_CIPHER_CTX (or is a raw block/counter-mode primitive
 * that could stand in for one): every such import must be one we expect. */
static int touches_cipher_context(const char *symbol) {
    static const char *const prefixes[] = {
        "EVP_CIPHER_CTX_", "EVP_Cipher", "EVP_Encrypt", "EVP_Decrypt", "AES_", "CRYPTO_ctr128", NULL
    };
    for (int i = 0; prefixes[i]; i++)
        if (strncmp(symbol, prefixes[i], strlen(prefixes[i])) == 0) return 1;
    return 0;
}

static void note_import(struct slot_search *search, const char *symbol) {
    if (!touches_cipher_context(symbol)) return;
    for (int i = 0; expected_cipher_calls[i]; i++)
        if (strcmp(symbol, expected_cipher_calls[i]) == 0) return;
    if (!search->unexpected) search->unexpected = symbol;
}

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
    const ElfW(Rela) *data_relocations = NULL;
    size_t data_relocation_bytes = 0;
    const ElfW(Sym) *symbols = NULL;
    const char *strings = NULL;
    for (const ElfW(Dyn) *entry = dynamic; entry->d_tag != DT_NULL; entry++) {
        switch (entry->d_tag) {
        case DT_JMPREL: relocations = (const ElfW(Rela) *)dynamic_address(info->dlpi_addr, entry->d_un.d_ptr); break;
        case DT_PLTRELSZ: relocation_bytes = entry->d_un.d_val; break;
        case DT_RELA: data_relocations = (const ElfW(Rela) *)dynamic_address(info->dlpi_addr, entry->d_un.d_ptr); break;
        case DT_RELASZ: data_relocation_bytes = entry->d_un.d_val; break;
        case DT_SYMTAB: symbols = (const ElfW(Sym) *)dynamic_address(info->dlpi_addr, entry->d_un.d_ptr); break;
        case DT_STRTAB: strings = (const char *)dynamic_address(info->dlpi_addr, entry->d_un.d_ptr); break;
        }
    }
    if (!relocations || !symbols || !strings) return 1;
    for (size_t i = 0; i < relocation_bytes / sizeof *relocations; i++) {
        if (ELF64_R_TYPE(relocations[i].r_info) != R_X86_64_JUMP_SLOT) continue;
        const char *symbol = strings + symbols[ELF64_R_SYM(relocations[i].r_info)].st_name;
        note_import(search, symbol);
        for (int k = 0; k < 3; k++)
            if (strcmp(symbol, search->names[k]) == 0)
                search->slots[k] = (void **)(info->dlpi_addr + relocations[i].r_offset);
    }
    /* A function whose address libssh2 takes (or calls without a PLT slot) is bound
     * through a data relocation instead: it counts as a use all the same, and no slot
     * we patch would catch it. */
    for (size_t i = 0; i < data_relocation_bytes / sizeof *data_relocations; i++) {
        unsigned long type = ELF64_R_TYPE(data_relocations[i].r_info);
        if (type != R_X86_64_GLOB_DAT && type != R_X86_64_64) continue;
        size_t index = ELF64_R_SYM(data_relocations[i].r_info);
        if (index == 0) continue;
        const char *symbol = strings + symbols[index].st_name;
        note_import(search, symbol);
        for (int k = 0; k < 3; k++)
            if (strcmp(symbol, search->names[k]) == 0 && !search->unexpected)
                search->unexpected = symbol;  /* bound where our slot can't redirect it */
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

/* MARK: The known answer

 * AES-128-CTR from NIST SP 800-38A, F.5.1 (and F.5.2: CTR decryption is the same
 * operation), run through the functions libssh2's slots now point at, the way libssh2
 * 1.10 uses them: a context from EVP_CIPHER_CTX_new, EVP_CipherInit with key and IV,
 * then one EVP_Cipher call per 16-byte block, in place. Then ~10 keystream refills'
 * worth of blocks are checked against OpenSSL's own bulk EVP_Cipher on a second
 * context, a re-initialized context must start its keystream over, and a freed one must
 * be forgotten. If any of it differs, the slots are put back. */
static const unsigned char kat_key[16] = {
    0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c };
static const unsigned char kat_counter[16] = {
    0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff };
static const unsigned char kat_plain[64] = {
    0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93, 0x17, 0x2a,
    0xae, 0x2d, 0x8a, 0x57, 0x1e, 0x03, 0xac, 0x9c, 0x9e, 0xb7, 0x6f, 0xac, 0x45, 0xaf, 0x8e, 0x51,
    0x30, 0xc8, 0x1c, 0x46, 0xa3, 0x5c, 0xe4, 0x11, 0xe5, 0xfb, 0xc1, 0x19, 0x1a, 0x0a, 0x52, 0xef,
    0xf6, 0x9f, 0x24, 0x45, 0xdf, 0x4f, 0x9b, 0x17, 0xad, 0x2b, 0x41, 0x7b, 0xe6, 0x6c, 0x37, 0x10 };
static const unsigned char kat_cipher[64] = {
    0x87, 0x4d, 0x61, 0x91, 0xb6, 0x20, 0xe3, 0x26, 0x1b, 0xef, 0x68, 0x64, 0x99, 0x0d, 0xb6, 0xce,
    0x98, 0x06, 0xf6, 0x6b, 0x79, 0x70, 0xfd, 0xff, 0x86, 0x17, 0x18, 0x7b, 0xb9, 0xff, 0xfd, 0xff,
    0x5a, 0xe4, 0xdf, 0x3e, 0xdb, 0xd5, 0xd3, 0x5e, 0x5b, 0x4f, 0x09, 0x02, 0x0d, 0xb0, 0x3e, 0xab,
    0x1e, 0x03, 0x1d, 0xda, 0x2f, 0xbe, 0x03, 0xd1, 0x79, 0x21, 0x70, 0xa0, 0xf3, 0x00, 0x9c, 0xee };

#define KAT_LONG_BLOCKS (10 * KEYSTREAM_BYTES / 16 + 7)

typedef EVP_CIPHER_CTX *(*new_fn)(void);
typedef const EVP_CIPHER *(*aes_fn)(void);

/* 1 if the redirected calls (`init`, `cipher`, `release`) give AES-128-CTR's known
 * answers block by block in both directions, and what a fresh context gives in bulk. */
static int known_answer(init_fn init, cipher_fn cipher, free_fn release) {
    new_fn new_ctx = (new_fn)dlsym(RTLD_DEFAULT, "EVP_CIPHER_CTX_new");
    aes_fn aes_128_ctr = (aes_fn)dlsym(RTLD_DEFAULT, "EVP_aes_128_ctr");
    if (!new_ctx || !aes_128_ctr || !real_cipher || !real_init || !real_free) return 0;
    const EVP_CIPHER *aes = aes_128_ctr();
    int ok = 1;
    for (int encrypt = 1; encrypt >= 0 && ok; encrypt--) {
        EVP_CIPHER_CTX *ctx = new_ctx();
        if (!ctx) return 0;
        const unsigned char *from = encrypt ? kat_plain : kat_cipher;
        const unsigned char *to = encrypt ? kat_cipher : kat_plain;
        /* Twice on one context: a re-init must start the keystream over. */
        for (int round = 0; round < 2 && ok; round++) {
            if (init(ctx, aes, kat_key, kat_counter, encrypt) != 1) { ok = 0; break; }
            unsigned char block[16];
            for (int b = 0; b < 4 && ok; b++) {
                memcpy(block, from + 16 * b, 16);
                if (cipher(ctx, block, block, 16) < 0 || memcmp(block, to + 16 * b, 16) != 0) ok = 0;
            }
        }
        /* Past several refills, against OpenSSL's bulk answer from the same start. */
        EVP_CIPHER_CTX *reference = new_ctx();
        unsigned char *ours = calloc(KAT_LONG_BLOCKS, 16), *theirs = calloc(KAT_LONG_BLOCKS, 16);
        if (!reference || !ours || !theirs) ok = 0;
        if (ok && (init(ctx, aes, kat_key, kat_counter, encrypt) != 1
                   || real_init(reference, aes, kat_key, kat_counter, encrypt) != 1)) ok = 0;
        for (unsigned int i = 0; ok && i < KAT_LONG_BLOCKS * 16; i++) ours[i] = theirs[i] = (unsigned char)(i * 7 + 3);
        for (unsigned int b = 0; ok && b < KAT_LONG_BLOCKS; b++)
            if (cipher(ctx, ours + 16 * b, ours + 16 * b, 16) < 0) ok = 0;
        if (ok && (real_cipher(reference, theirs, theirs, KAT_LONG_BLOCKS * 16) < 0
                   || memcmp(ours, theirs, KAT_LONG_BLOCKS * 16) != 0)) ok = 0;
        free(ours);
        free(theirs);
        if (reference) real_free(reference);
        release(ctx);
        /* Freed: nothing of it may stay registered (a new context can reuse its address). */
        if (find(ctx) != NULL) ok = 0;
    }
    return ok;
}

int tether_ssh_cipher_known_answer(void) {
    pthread_once(&setup_once, setup);
    if (!patched) return 0;
    return known_answer(tether_cipher_init, tether_cipher, tether_cipher_ctx_free)
        && *patched_slots[0] == (void *)tether_cipher_init
        && *patched_slots[1] == (void *)tether_cipher
        && *patched_slots[2] == (void *)tether_cipher_ctx_free;
}

const char *tether_ssh_cipher_refusal(void) {
    pthread_once(&setup_once, setup);
    return refusal;
}

static void setup(void) {
#if defined(__x86_64__)
    /* An escape hatch, and a way to measure what this is worth. */
    const char *off = getenv("TETHER_SSH_CIPHER_BATCHING");
    if (off && (strcmp(off, "0") == 0 || strcmp(off, "off") == 0)) { refusal = "turned off (TETHER_SSH_CIPHER_BATCHING=0)"; return; }
    /* libssh2 1.11 batches CTR blocks itself (and adds AES-GCM): no patch there, whoever
     * asks. libssh2_version(n) answers NULL when the library is older than n. */
    typedef const char *(*version_fn)(int);
    version_fn libssh2_version_of = (version_fn)dlsym(RTLD_DEFAULT, "libssh2_version");
    if (!libssh2_version_of) { refusal = "libssh2 not loaded"; return; }
    if (libssh2_version_of(0x010b00) != NULL) { refusal = "libssh2 1.11 or later batches AES-CTR itself"; return; }
    real_cipher = (cipher_fn)dlsym(RTLD_DEFAULT, "EVP_Cipher");
    real_init = (init_fn)dlsym(RTLD_DEFAULT, "EVP_CipherInit");
    real_free = (free_fn)dlsym(RTLD_DEFAULT, "EVP_CIPHER_CTX_free");
    real_cipher_flags = (flags_fn)dlsym(RTLD_DEFAULT, "EVP_CIPHER_get_flags");
    if (!real_cipher || !real_init || !real_free || !real_cipher_flags) { refusal = "OpenSSL 3's EVP calls not found"; return; }
    struct slot_search search = { { "EVP_CipherInit", "EVP_Cipher", "EVP_CIPHER_CTX_free" }, { 0 }, 0, NULL };
    dl_iterate_phdr(find_slots, &search);
    if (!search.found_library) { refusal = "libssh2 not loaded"; return; }
    if (search.unexpected) {
        static char why[160];
        snprintf(why, sizeof why, "libssh2 uses %s on cipher contexts, which the batched keystream does not expect", search.unexpected);
        refusal = why;
        return;
    }
    if (!search.slots[0] || !search.slots[1] || !search.slots[2]) { refusal = "libssh2's EVP_Cipher slots not found"; return; }
    /* Init and free first: a context is only ever registered by our init. */
    void *originals[3] = { *search.slots[0], *search.slots[1], *search.slots[2] };
    if (!overwrite(search.slots[0], (void *)tether_cipher_init)) { refusal = "libssh2's GOT is not writable"; return; }
    if (!overwrite(search.slots[2], (void *)tether_cipher_ctx_free)
        || !overwrite(search.slots[1], (void *)tether_cipher)
        || !known_answer(tether_cipher_init, tether_cipher, tether_cipher_ctx_free)) {
        /* Put back what was there: libssh2 runs unchanged. Nothing has used a session yet. */
        overwrite(search.slots[1], originals[1]);
        overwrite(search.slots[2], originals[2]);
        overwrite(search.slots[0], originals[0]);
        refusal = "the known-answer self-test failed";
        return;
    }
    for (int k = 0; k < 3; k++) patched_slots[k] = search.slots[k];
    patched = 1;
    refusal = NULL;
#else
    refusal = "not x86-64";
#endif
}

int tether_ssh_cipher_setup(void) {
    pthread_once(&setup_once, setup);
    return patched;
}
