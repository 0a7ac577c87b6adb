/**
 * IPv4 addresses and networks, as corral's pools and the overlay use them:
 * an address is a dotted quad, a network `a.b.c.d/N`. Pure.
 */

const quad = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** An address as a 32-bit unsigned number; throws on anything but a dotted quad of octets. */
export function ipv4ToNumber(address: string): number {
  const m = quad.exec(address);
  const octets = m ? m.slice(1).map(Number) : [];
  if (octets.length !== 4 || octets.some((o) => o > 255)) throw new Error(`not an IPv4 address: ${address}`);
  return ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
}

export function numberToIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** The four octets of an address. */
export const octets = (address: string): number[] => {
  const n = ipv4ToNumber(address);
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
};

/** A network: its first address (masked) and prefix length; throws on a malformed one. */
export function parseCidr(cidr: string): { base: number; bits: number } {
  const [address, bits, ...rest] = cidr.split("/");
  const n = Number(bits);
  if (rest.length > 0 || bits === undefined || !/^\d{1,2}$/.test(bits) || n > 32) throw new Error(`not an IPv4 network: ${cidr}`);
  return { base: (ipv4ToNumber(address!) & mask(n)) >>> 0, bits: n };
}

const mask = (bits: number) => (bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0);

/** Whether `ip` (a dotted quad; anything else is not) is in the network `cidr`. */
export function inSubnet(ip: string, cidr: string): boolean {
  if (!quad.test(ip)) return false;
  const { base, bits } = parseCidr(cidr);
  return ((ipv4ToNumber(ip) & mask(bits)) >>> 0) === base;
}

/** The /`prefix` networks a network is cut into, in order (`10.200.0.0/14` → 1024 /24s). */
export function subnetsOf(cidr: string, prefix: number): string[] {
  const { base, bits } = parseCidr(cidr);
  if (bits > prefix) throw new Error(`${cidr} is smaller than a /${prefix}`);
  return Array.from({ length: 2 ** (prefix - bits) }, (_, i) => `${numberToIpv4((base + i * 2 ** (32 - prefix)) >>> 0)}/${prefix}`);
}

/** A network's host addresses: all but its first and last. */
export function hostAddressesOf(cidr: string): string[] {
  const { base, bits } = parseCidr(cidr);
  return Array.from({ length: Math.max(0, 2 ** (32 - bits) - 2) }, (_, i) => numberToIpv4((base + i + 1) >>> 0));
}
