/**
 * VXLAN network identifiers: 4096 up to 2^24-1 (below 4096 is left for VLAN-style use, as Docker
 * does), lowest free first. Pure.
 */
import { InvalidVniError, VniExhaustedError, VniInUseError } from './errors.js';

export const VNI_MIN = 4096;
export const VNI_MAX = 2 ** 24 - 1;
/** The driver option that carries a network's VNI (Docker's name; a comma list, one entry here). */
export const VXLAN_ID_OPTION = 'com.docker.network.driver.overlay.vxlanid_list';

export class VniSet {
  private readonly used = new Set<number>();
  private lowest = VNI_MIN;

  /** Parses and range-checks a VNI given as text (a driver option). */
  static parse(text: string): number {
    if (!/^\d+$/.test(text)) throw new InvalidVniError(`invalid VXLAN id "${text}": not a number`);
    const vni = Number(text);
    if (vni < VNI_MIN || vni > VNI_MAX)
      throw new InvalidVniError(`invalid VXLAN id ${vni}: must be between ${VNI_MIN} and ${VNI_MAX}`);
    return vni;
  }

  clearAll(): void {
    this.used.clear();
    this.lowest = VNI_MIN;
  }

  has(vni: number): boolean {
    return this.used.has(vni);
  }

  /** The lowest free VNI, without taking it. */
  peek(): number {
    let v = this.lowest;
    while (this.used.has(v)) v++;
    if (v > VNI_MAX) throw new VniExhaustedError(VNI_MIN, VNI_MAX);
    return v;
  }

  /** Takes a VNI; `owner` names the network in the error when it is taken already. */
  take(vni: number, owner = 'this network'): void {
    if (this.used.has(vni)) throw new VniInUseError(vni, owner);
    this.used.add(vni);
    if (vni === this.lowest) this.lowest = this.peekFrom(vni + 1);
  }

  release(vni: number): void {
    if (this.used.delete(vni) && vni < this.lowest) this.lowest = vni;
  }

  private peekFrom(from: number): number {
    let v = from;
    while (this.used.has(v)) v++;
    return v;
  }
}
