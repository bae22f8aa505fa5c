/** Interface MACs derived from IPv4 addresses, as Docker does: 02:42 then the four address bytes. */
import { parseIp } from './ipv4.js';

export function macFromIp(ip: string): string {
  const n = parseIp(ip.split('/')[0] ?? ip);
  const bytes = [0x02, 0x42, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}
