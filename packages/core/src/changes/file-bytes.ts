/**
 * The bytes a layer tar carries for a set of entries: regular files only, each inode once however
 * many hard links reach it (the tar carries the later links as size-0 entries).
 */

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

/** What FileBytes needs of a stat, from lstat (bigint ids) or the addon's fstatat (numbers). */
export interface SizedInode {
  mode: number;
  nlink: number;
  dev: number | bigint;
  ino: number | bigint;
  size: number;
}

export class FileBytes {
  #seen = new Set<string>();
  total = 0;

  add(st: SizedInode): void {
    if ((st.mode & S_IFMT) !== S_IFREG) return;
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      if (this.#seen.has(key)) return;
      this.#seen.add(key);
    }
    this.total += st.size;
  }
}
