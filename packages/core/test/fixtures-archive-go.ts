/**
 * A Go program that writes a tree as moby does (pkg/archive tarAppender.addTarFile: Go's
 * archive/tar, FileInfoHeaderNoLookups, Format PAX, whole-second mtime; with -overlay the overlay
 * whiteout converter's ConvertWrite), taking every xattr but overlay's as graphdriver does. The
 * golden test builds it with the Go toolchain when one is installed and compares bytes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { run } from './fixtures-archive.js';

export const MOBY_TAR_GO = String.raw`// moby's tarAppender.addTarFile (and, with -overlay, its overlay whiteout converter) (FileInfoHeaderNoLookups + Format PAX + whole-second mtime), with
// all xattrs but overlay's (graphdriver's policy; moby itself only takes security.capability).
package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

type nosys struct{ os.FileInfo }

func (nosys) Sys() any { return nil }

func xattrCall(trap uintptr, path, name string, buf []byte) int {
	p, _ := syscall.BytePtrFromString(path)
	var n uintptr
	var e syscall.Errno
	if name == "" {
		n, _, e = syscall.Syscall(trap, uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	} else {
		k, _ := syscall.BytePtrFromString(name)
		n, _, e = syscall.Syscall6(trap, uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(k)), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	}
	if e != 0 {
		return -1
	}
	return int(n)
}

func main() {
	overlay := len(os.Args) > 2 && os.Args[2] == "-overlay"
	src := os.Args[1]
	tw := tar.NewWriter(os.Stdout)
	seen := map[uint64]string{}
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSocket != 0 {
			return nil // Go's FileInfoHeader refuses sockets; moby logs and skips
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			link, _ = os.Readlink(path)
		}
		hdr, err := tar.FileInfoHeader(nosys{fi}, link)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		if st.Mode&syscall.S_IFBLK != 0 || st.Mode&syscall.S_IFCHR != 0 {
			hdr.Devmajor = int64(((st.Rdev >> 8) & 0xfff) | ((st.Rdev >> 32) &^ 0xfff))
			hdr.Devminor = int64((st.Rdev & 0xff) | ((st.Rdev >> 12) &^ 0xff))
		}
		hdr.Format = tar.FormatPAX
		hdr.ModTime = hdr.ModTime.Truncate(time.Second)
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		buf := make([]byte, 1<<16)
		if n := xattrCall(syscall.SYS_LLISTXATTR, path, "", buf); n > 0 {
			for _, x := range bytes.Split(buf[:n], []byte{0}) {
				name := string(x)
				if name == "" || strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") {
					continue
				}
				v := make([]byte, 1<<16)
				m := xattrCall(syscall.SYS_LGETXATTR, path, name, v)
				if hdr.PAXRecords == nil {
					hdr.PAXRecords = map[string]string{}
				}
				hdr.PAXRecords["SCHILY.xattr."+name] = string(v[:m])
			}
		}
		if !fi.IsDir() && st.Nlink > 1 {
			if old, ok := seen[st.Ino]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, old, 0
			} else {
				seen[st.Ino] = hdr.Name
			}
		}
		if overlay {
			// moby's overlayWhiteoutConverter.ConvertWrite
			if fi.Mode()&os.ModeCharDevice != 0 && hdr.Devmajor == 0 && hdr.Devminor == 0 {
				dir, file := filepath.Split(hdr.Name)
				hdr.Name = filepath.Join(dir, ".wh."+file)
				hdr.Mode, hdr.Typeflag, hdr.Size = 0o600, tar.TypeReg, 0
			}
			if fi.IsDir() {
				v := make([]byte, 16)
				if m := xattrCall(syscall.SYS_LGETXATTR, path, "trusted.overlay.opaque", v); m == 1 && v[0] == 'y' {
					if err := tw.WriteHeader(hdr); err != nil {
						return err
					}
					hdr = &tar.Header{Typeflag: tar.TypeReg, Mode: hdr.Mode & int64(os.ModePerm),
						Name: filepath.Join(hdr.Name, ".wh..wh..opq"), Uid: hdr.Uid, Gid: hdr.Gid}
				}
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		panic(err)
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
}
`;

/** Build the program into `dir`; undefined (with the reason) when there is no Go toolchain. */
export async function buildMobyTar(dir: string): Promise<{ path: string } | { skip: string }> {
  try {
    await run('go', ['version']);
  } catch {
    return { skip: 'no Go toolchain on PATH (apt-get install golang-go to run this comparison)' };
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/main.go`, MOBY_TAR_GO);
  writeFileSync(`${dir}/go.mod`, 'module mobytar\ngo 1.19\n');
  await run('go', ['build', '-o', `${dir}/mobytar`, '.'], { cwd: dir, env: { ...process.env, GOFLAGS: '-mod=mod' } });
  return { path: `${dir}/mobytar` };
}
