#include "file_system.h"
#include <sys/vfs.h>
#include <linux/magic.h>

int phonehome_is_memory_file_system(const char *path) {
    struct statfs fs;
    if (statfs(path, &fs) != 0) return 0;
    return fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC;
}
