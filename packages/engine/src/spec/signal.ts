/**
 * Stop signals: the service's, else the image's StopSignal, else SIGTERM. Names (`TERM`,
 * `SIGTERM`, `SIGRTMIN+3`) and numbers are accepted; the result is what runc kill understands: a
 * name, or the number for real-time signals (runc has no names for those).
 */
import { constants } from 'node:os';
import { InvalidSpecError } from '../errors.js';

const SIGRTMIN = 34;
const SIGRTMAX = 64;

/** The canonical form of a signal (`SIGTERM`, `37` for SIGRTMIN+3); throws naming the field. */
export function normaliseStopSignal(sig: string | number, field = 'stopSignal'): string {
  const s = String(sig).trim().toUpperCase();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    const name = Object.entries(constants.signals).find(([, v]) => v === n)?.[0];
    if (name) return name;
    if (n >= SIGRTMIN && n <= SIGRTMAX) return String(n);
    throw new InvalidSpecError(field, `unknown signal number ${s}`);
  }
  const name = s.startsWith('SIG') ? s : `SIG${s}`;
  const rt = /^SIGRT(MIN|MAX)([+-]\d+)?$/.exec(name);
  if (rt) {
    const n = (rt[1] === 'MIN' ? SIGRTMIN : SIGRTMAX) + Number(rt[2] ?? 0);
    if (n < SIGRTMIN || n > SIGRTMAX) throw new InvalidSpecError(field, `${String(sig)} is out of the RT range`);
    return String(n);
  }
  if (!(name in constants.signals)) throw new InvalidSpecError(field, `unknown signal ${JSON.stringify(sig)}`);
  return name;
}

/** Service, then image, then SIGTERM. */
export function resolveStopSignal(service: string | number | undefined, image: string | undefined): string {
  if (service !== undefined && service !== '') return normaliseStopSignal(service, 'stopSignal');
  if (image) return normaliseStopSignal(image, 'image StopSignal');
  return 'SIGTERM';
}
