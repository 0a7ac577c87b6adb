import { subnetsOf } from "@corral/core/host";

/** The /24 subnets of an IPv4 pool (`10.200.0.0/14` → 1024 of them). */
export function subnetPool(cidr: string): string[] {
  try {
    return subnetsOf(cidr, 24);
  } catch {
    throw new Error(`subnet pool ${cidr}: expected an IPv4 network of /24 or larger`);
  }
}
