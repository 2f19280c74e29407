/* Power-loss tracer for tests/robustness/test_power_loss.py, loaded with LD_PRELOAD.
 *
 * It keeps, beside the real file system, what a power loss at any moment would leave behind
 * under a strict model (ext4 data=ordered without the luck): a file's content is durable only
 * as of its last fsync/fdatasync, a directory's entries only as of the directory's last fsync.
 * After each successful fsync or fdatasync of a file or directory under $POWERLOSS_ROOT it
 * records into $POWERLOSS_SHADOW:
 *   ino/<inode>   the file's whole content at that moment;
 *   dir/<inode>   the directory's entries at that moment, one "<inode> <f|d> <name>" a line.
 * Nothing else is intercepted: writes, renames, links and unlinks become durable only through
 * these records. The test rebuilds the durable state from them (plus the state before the
 * run) and starts the store on it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t shadow_lock = PTHREAD_MUTEX_INITIALIZER;

static int fd_under_root(int fd) {
    const char *root = getenv("POWERLOSS_ROOT");
    char link[64], path[PATH_MAX];
    if (root == NULL || getenv("POWERLOSS_SHADOW") == NULL) return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0) return 0;
    path[n] = '\0';
    size_t len = strlen(root);
    return strncmp(path, root, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

static void publish(const char *tmp, const char *final) {
    if (rename(tmp, final) != 0) unlink(tmp);
}

static void record_file(int fd, ino_t ino) {
    char link[64], tmp[PATH_MAX + 16], final[PATH_MAX], buf[65536];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    int src = open(link, O_RDONLY | O_CLOEXEC);
    if (src < 0) return;
    snprintf(final, sizeof final, "%s/ino/%lu", getenv("POWERLOSS_SHADOW"), (unsigned long)ino);
    snprintf(tmp, sizeof tmp, "%s.part", final);
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out >= 0) {
        off_t off = 0;
        ssize_t n;
        int ok = 1;
        while ((n = pread(src, buf, sizeof buf, off)) > 0) {
            if (write(out, buf, (size_t)n) != n) { ok = 0; break; }
            off += n;
        }
        close(out);
        if (ok && n == 0) publish(tmp, final); else unlink(tmp);
    }
    close(src);
}

static void record_dir(int fd, ino_t ino) {
    char link[64], tmp[PATH_MAX + 16], final[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    int dfd = open(link, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return;
    DIR *dir = fdopendir(dfd);
    if (dir == NULL) { close(dfd); return; }
    snprintf(final, sizeof final, "%s/dir/%lu", getenv("POWERLOSS_SHADOW"), (unsigned long)ino);
    snprintf(tmp, sizeof tmp, "%s.part", final);
    FILE *out = fopen(tmp, "we");
    if (out != NULL) {
        struct dirent *e;
        struct stat st;
        while ((e = readdir(dir)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
            if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) continue;
            fprintf(out, "%lu %c %s\n", (unsigned long)st.st_ino, S_ISDIR(st.st_mode) ? 'd' : 'f',
                    e->d_name);
        }
        if (fclose(out) == 0) publish(tmp, final); else unlink(tmp);
    }
    closedir(dir);
}

static void record(int fd) {
    struct stat st;
    if (!fd_under_root(fd) || fstat(fd, &st) != 0) return;
    pthread_mutex_lock(&shadow_lock);
    if (S_ISREG(st.st_mode)) record_file(fd, st.st_ino);
    else if (S_ISDIR(st.st_mode)) record_dir(fd, st.st_ino);
    pthread_mutex_unlock(&shadow_lock);
}

int fsync(int fd) {
    static int (*real_fsync)(int);
    if (real_fsync == NULL) real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    int rc = real_fsync(fd);
    if (rc == 0) record(fd);
    return rc;
}

int fdatasync(int fd) {
    static int (*real_fdatasync)(int);
    if (real_fdatasync == NULL) real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    int rc = real_fdatasync(fd);
    if (rc == 0) record(fd);
    return rc;
}
