/**
 * Resolution of a container `user` ("uid", "uid:gid", "name", "name:group", "" for root) against
 * the rootfs's own /etc/passwd and /etc/group, like Docker: numeric ids need no entry, names must
 * exist; the supplementary groups are those listing the user, plus any `groupAdd` entries.
 * The files are read only when they are plain files inside the rootfs (a symlink could point at
 * the host's own files).
 */
import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '@shoal/common';
import { UserNotFoundError } from '../errors.js';
import type { OciUser } from '../spec/oci.js';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (f.length < 4 || !f[0] || !Number.isInteger(uid) || !Number.isInteger(gid)) continue;
    out.push({ name: f[0], uid, gid, home: f[5] ?? '/' });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    const gid = Number(f[2]);
    if (f.length < 3 || !f[0] || !Number.isInteger(gid)) continue;
    out.push({ name: f[0], gid, members: (f[3] ?? '').split(',').filter(Boolean) });
  }
  return out;
}

/**
 * Errors that mean "the image has no such file": absent, a parent that is not a directory, or a
 * symlink loop on the way (e.g. an image whose /etc is a link). Anything else (EACCES, EIO) is real.
 */
const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'ELOOP']);

/** A file of the rootfs, or '' when it is absent or not a regular file. */
async function rootfsFile(rootfs: string, rel: string): Promise<string> {
  const path = join(rootfs, rel);
  try {
    const st = await lstat(path);
    if (!st.isFile()) return '';
    return await readFile(path, 'utf8');
  } catch (err) {
    if (ABSENT.has(errnoCode(err) ?? '')) return '';
    throw err;
  }
}

const ID = /^\d+$/;
const MAX_ID = 2 ** 32 - 2;

function numericId(s: string, what: string, user: string): number {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n > MAX_ID) throw new UserNotFoundError(user, `${what} ${s} is out of range`);
  return n;
}

/** Resolves a user spec in the context of a rootfs. `groupAdd` takes group names or gids. */
export async function resolveUser(rootfs: string, user: string, groupAdd: readonly string[] = []): Promise<OciUser> {
  const spec = user.trim();
  const [userPart = '', groupPart, ...rest] = spec.split(':');
  if (rest.length > 0) throw new UserNotFoundError(user, 'expected user[:group]');
  const passwd = parsePasswd(await rootfsFile(rootfs, 'etc/passwd'));
  const groups = parseGroup(await rootfsFile(rootfs, 'etc/group'));

  let uid: number;
  let gid: number;
  let name: string | undefined;
  if (userPart === '') {
    uid = 0;
    const root = passwd.find((p) => p.uid === 0);
    gid = root?.gid ?? 0;
    name = root?.name;
  } else if (ID.test(userPart)) {
    uid = numericId(userPart, 'uid', user);
    const entry = passwd.find((p) => p.uid === uid);
    gid = entry?.gid ?? 0;
    name = entry?.name;
  } else {
    const entry = passwd.find((p) => p.name === userPart);
    if (!entry) throw new UserNotFoundError(user, `no user ${JSON.stringify(userPart)} in the image's /etc/passwd`);
    ({ uid, gid, name } = entry);
  }

  if (groupPart !== undefined) {
    if (groupPart === '') throw new UserNotFoundError(user, 'empty group after ":"');
    gid = lookupGroup(groups, groupPart, user);
  }

  const extra = new Set<number>();
  // supplementary groups from /etc/group only when no explicit group was given (as Docker)
  if (groupPart === undefined && name !== undefined) {
    for (const g of groups) if (g.members.includes(name) && g.gid !== gid) extra.add(g.gid);
  }
  for (const g of groupAdd) extra.add(lookupGroup(groups, g, user));
  const result: OciUser = { uid, gid };
  // Docker lists the primary group too; runc sets exactly these as the supplementary groups
  result.additionalGids = [gid, ...[...extra].filter((g) => g !== gid).sort((a, b) => a - b)];
  return result;
}

function lookupGroup(groups: GroupEntry[], g: string, user: string): number {
  if (ID.test(g)) return numericId(g, 'gid', user);
  const entry = groups.find((e) => e.name === g);
  if (!entry) throw new UserNotFoundError(user, `no group ${JSON.stringify(g)} in the image's /etc/group`);
  return entry.gid;
}
