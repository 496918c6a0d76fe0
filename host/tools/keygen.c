/* keygen: a development key pair (see keygen.h). */
#include "tools/keygen.h"

#include "cliq/verify.h"
#include "core/base64.h"
#include "core/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define KEY_BITS     2048 /* what Cliq's own keys are */
#define PATH_MAX_LEN 4096

static int usage(const char *why)
{
    fprintf(stderr,
            "cliqhost keygen: %s\n"
            "usage: cliqhost keygen DIR [--force]\n",
            why);
    return 2;
}

static void print_help(void)
{
    printf("usage: cliqhost keygen DIR [--force]\n"
           "\n"
           "Writes a development RSA-%d key pair, so that `serve` and `invoke` can play\n"
           "both sides of Cliq's signature without a Cliq account:\n"
           "\n"
           "  DIR/cliq-dev.pem   the private key (PKCS#8 PEM, mode 0600): invoke signs with it\n"
           "  DIR/cliq-dev.pub   the public key as Cliq shows it on the extension page (one\n"
           "                     line of base64 X.509 SubjectPublicKeyInfo): serve --key takes it\n"
           "\n"
           "DIR is created if missing. An existing pair is kept (exit 1) unless --force\n"
           "replaces it.\n"
           "\n"
           "exit status: 0 written, 1 not written (a pair is there, or a write failed),\n"
           "2 usage error\n",
           KEY_BITS);
}

/* Makes `dir` and its missing parents (mode 0755). Returns 0, or -1 with
 * errno set. */
static int make_dirs(const char *dir)
{
    char path[PATH_MAX_LEN];
    int n = snprintf(path, sizeof path, "%s", dir);
    if (n < 0 || (size_t)n >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* Writes `len` bytes to a new temporary file beside `final` with `mode`,
 * then renames it over `final`, so a reader never sees half a key. Returns
 * 0, or -1 with the reason in err. */
static int write_file(const char *final, const void *data, size_t len, mode_t mode, char *err,
                      size_t errlen)
{
    char tmp[PATH_MAX_LEN + 16];
    snprintf(tmp, sizeof tmp, "%s.XXXXXX", final);
    int fd = mkstemp(tmp); /* 0600 */
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %s: %s", final, strerror(errno));
        return -1;
    }
    const char *p = data;
    size_t left = len;
    int bad = fchmod(fd, mode) != 0;
    while (!bad && left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            bad = 1;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (!bad && fsync(fd) != 0)
        bad = 1;
    int saved = errno;
    if (close(fd) != 0 && !bad) {
        bad = 1;
        saved = errno;
    }
    if (!bad && rename(tmp, final) != 0) {
        bad = 1;
        saved = errno;
    }
    if (bad) {
        unlink(tmp);
        snprintf(err, errlen, "cannot write %s: %s", final, strerror(saved));
        return -1;
    }
    return 0;
}

/* The private key as PKCS#8 PEM. Caller frees. NULL if OpenSSL fails. */
static char *private_pem(EVP_PKEY *key, size_t *len)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (mem && PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL) == 1) {
        char *data;
        long n = BIO_get_mem_data(mem, &data);
        if (n > 0) {
            out = xstrndup(data, (size_t)n);
            *len = (size_t)n;
        }
    }
    BIO_free(mem);
    return out;
}

/* The public key as Cliq shows it: base64 of the DER SubjectPublicKeyInfo
 * on one line, with a newline. Caller frees. NULL if OpenSSL fails. */
static char *public_line(EVP_PKEY *key, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(key, &der);
    if (n <= 0)
        return NULL;
    char *out = xmalloc(BASE64_ENCODED_LEN((size_t)n) + 2);
    size_t m = base64_encode(der, (size_t)n, out);
    out[m++] = '\n';
    out[m] = '\0';
    *len = m;
    OPENSSL_free(der);
    return out;
}

int cli_keygen(int argc, char **argv)
{
    const char *dir = NULL;
    int force = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help();
            return 0;
        } else if (strcmp(argv[i], "--force") == 0) {
            force = 1;
        } else if (strncmp(argv[i], "-", 1) == 0 && argv[i][1]) {
            fprintf(stderr, "cliqhost keygen: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (!dir) {
            dir = argv[i];
        } else {
            return usage("takes one DIR");
        }
    }
    if (!dir || !*dir)
        return usage("needs the folder to write the pair to (e.g. build/dev)");

    char pem_path[PATH_MAX_LEN], pub_path[PATH_MAX_LEN];
    size_t dlen = strlen(dir);
    while (dlen > 1 && dir[dlen - 1] == '/')
        dlen--;
    if (dlen > PATH_MAX_LEN - 32)
        return usage("DIR is too long");
    snprintf(pem_path, sizeof pem_path, "%.*s/cliq-dev.pem", (int)dlen, dir);
    snprintf(pub_path, sizeof pub_path, "%.*s/cliq-dev.pub", (int)dlen, dir);

    struct stat st;
    int have_pem = lstat(pem_path, &st) == 0, have_pub = lstat(pub_path, &st) == 0;
    if ((have_pem || have_pub) && !force) {
        fprintf(stderr,
                "cliqhost keygen: %s already exists; keeping it (give --force to replace the "
                "pair)\n",
                have_pem ? pem_path : pub_path);
        return 1;
    }
    if (make_dirs(dir) != 0) {
        fprintf(stderr, "cliqhost keygen: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }

    int rc = 1;
    char err[PATH_MAX_LEN + 128];
    char *pem = NULL, *pub = NULL;
    size_t pem_len = 0, pub_len = 0;
    struct verify_keyset *ks = NULL;
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)KEY_BITS);
    if (key) {
        pem = private_pem(key, &pem_len);
        pub = public_line(key, &pub_len);
    }
    if (!pem || !pub) {
        fprintf(stderr, "cliqhost keygen: OpenSSL could not make an RSA-%d key\n", KEY_BITS);
        ERR_clear_error();
        goto cleanup;
    }
    /* The public half last: a pair with a .pub always has its .pem. */
    if (write_file(pem_path, pem, pem_len, 0600, err, sizeof err) < 0 ||
        write_file(pub_path, pub, pub_len, 0644, err, sizeof err) < 0) {
        fprintf(stderr, "cliqhost keygen: %s\n", err);
        goto cleanup;
    }
    /* Read the public key back the way `serve --key` will. */
    const char *spec = pub_path;
    ks = verify_keyset_load(&spec, 1, err, sizeof err);
    if (!ks) {
        fprintf(stderr, "cliqhost keygen: wrote %s, but serve would not read it: %s\n", pub_path,
                err);
        goto cleanup;
    }
    /* "RSA-2048 SHA256:1a2b... (path)": the key's part, as serve logs it. */
    const char *desc = verify_keyset_describe(ks, 0);
    const char *paren = strstr(desc, " (");
    int desc_len = paren ? (int)(paren - desc) : (int)strlen(desc);
    printf("wrote %s (private key: invoke signs with it; keep it to yourself)\n"
           "wrote %s (public key, as Cliq shows it: %.*s)\n"
           "\n"
           "use them:\n"
           "  cliqhost serve --key %s\n"
           "  cliqhost invoke --key %s command deploy \"api prod\"\n",
           pem_path, pub_path, desc_len, desc, pub_path, pem_path);
    rc = 0;
cleanup:
    verify_keyset_free(ks);
    if (pem)
        OPENSSL_cleanse(pem, pem_len);
    free(pem);
    free(pub);
    EVP_PKEY_free(key);
    return rc;
}
