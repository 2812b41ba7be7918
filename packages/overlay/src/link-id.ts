/**
 * Short link names: the 26-character ids of `<home>/l/<id>` (moby's overlayutils.GenerateID,
 * containers/storage's generateID): random bytes in RFC 4648 base32 (A-Z, 2-7), cut to 26
 * characters. 26 was chosen so that 128 lowers of `l/<id>:` fit in a page with room for a label.
 */
import { randomBytes } from 'node:crypto';

export const LINK_ID_LENGTH = 26;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** A fresh link id: 26 base32 characters from 17 random bytes (130 of their 136 bits). */
export function generateLinkId(length = LINK_ID_LENGTH): string {
  const bytes = randomBytes(Math.ceil((length * 5) / 8));
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5 && out.length < length) {
      bits -= 5;
      out += ALPHABET[(acc >>> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}

/**
 * Whether `name` can be a link name of a store we read: moby's and containers/storage's are 26
 * base32 characters, but older tools and hand-made stores may differ, so any plain name of letters
 * and digits is taken; nothing with a `/`, `.` or `:` (a lower file is split at `:`, and a name
 * must not lead out of `l/`).
 */
export function isLinkName(name: string): boolean {
  return /^[A-Za-z0-9]{1,255}$/.test(name);
}
