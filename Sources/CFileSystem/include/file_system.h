#pragma once

// 1 when `path` is on a file system held in memory (tmpfs, ramfs), 0 when not or unknown.
// statfs(2) and its type magics do not import into Swift.
int phonehome_is_memory_file_system(const char *path);
