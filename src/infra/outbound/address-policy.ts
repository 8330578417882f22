import ipaddr from "ipaddr.js";

/**
 * Which addresses outbound calls may reach: globally routable unicast only. IPv4 by ipaddr.js's
 * range table (loopback, RFC 1918 private, link-local and cloud metadata at 169.254.169.254,
 * CGNAT 100.64/10 — also Alibaba's metadata —, multicast, unspecified, broadcast and reserved or
 * documentation ranges are refused). IPv6 only inside 2000::/3 (global unicast) and outside its
 * special ranges. An IPv6 address that carries an IPv4 one is judged by the IPv4 address it
 * carries: IPv4-mapped (::ffff:a.b.c.d) stands for it and passes when it would; IPv4-compatible
 * (::a.b.c.d), NAT64 (64:ff9b::/96), 6to4 (2002::/16) and Teredo (2001::/32) are refused unless
 * the IPv4 address they carry is allow-listed. An operator allow-list of CIDRs or host names
 * opens exceptions (tests allow 127.0.0.1/32). Submit and delivery both ask this one policy.
 */
export function createAddressPolicy(allow: readonly string[]) {
  const networks: [ipaddr.IPv4 | ipaddr.IPv6, number][] = [];
  const hosts = new Set<string>();
  for (const entry of allow) {
    if (entry.includes("/")) networks.push(ipaddr.parseCIDR(entry));
    else if (isIpAddress(entry)) networks.push(ipaddr.parseCIDR(`${entry}/${ipaddr.parse(entry).kind() === "ipv4" ? 32 : 128}`));
    else hosts.add(entry.toLowerCase());
  }
  const allowed = (ip: ipaddr.IPv4 | ipaddr.IPv6) => networks.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits));

  const ipv4Refusal = (ip: ipaddr.IPv4) => {
    const range = ip.range();
    return range === "unicast" ? undefined : `a ${range} address`;
  };

  return {
    /** Why `address` may not be reached (e.g. "a loopback address"), or undefined when it may. */
    refusal(address: string): string | undefined {
      let ip: ipaddr.IPv4 | ipaddr.IPv6;
      try {
        ip = ipaddr.parse(address.replace(/^\[|\]$/g, ""));
      } catch {
        return "not an IP address";
      }
      if (allowed(ip)) return undefined;
      if (ip.kind() === "ipv4") return ipv4Refusal(ip as ipaddr.IPv4);
      const v6 = ip as ipaddr.IPv6;
      const embedded = embeddedIPv4(v6);
      if (embedded) {
        if (allowed(embedded.ipv4)) return undefined;
        const inner = ipv4Refusal(embedded.ipv4);
        if (embedded.form === "IPv4-mapped") return inner && `${inner} (IPv4-mapped ${embedded.ipv4.toString()})`;
        return `an ${embedded.form} address carrying ${embedded.ipv4.toString()}${inner ? `, ${inner}` : ""}`;
      }
      const range = v6.range();
      if (!v6.match(GLOBAL_UNICAST, 3)) return `a ${range === "unicast" ? "reserved" : range} address`;
      return range === "unicast" ? undefined : `a ${range} address`;
    },
    /** Host names the operator allowed outright; their addresses are not checked. */
    hostAllowed: (hostname: string) => hosts.has(hostname.toLowerCase()),
    isIpLiteral: (hostname: string) => isIpAddress(hostname.replace(/^\[|\]$/g, "")),
  };
}

const GLOBAL_UNICAST = ipaddr.IPv6.parse("2000::");

/** Every character ipaddr.js's IPv4 parser accepts (decimal, octal and hex parts, dots). */
const IPV4_CHARACTERS = /^[0-9a-fx.]+$/i;

/**
 * `ipaddr.isValid`, without its cost for host names: its IPv4 check builds and catches an Error
 * for every string that is not an address (about 25 µs, once per submit and per attempt to a
 * host name), so only strings made of an IPv4 address's characters go there.
 */
export function isIpAddress(text: string): boolean {
  return ipaddr.IPv6.isValid(text) || (IPV4_CHARACTERS.test(text) && ipaddr.IPv4.isValid(text));
}

/** The IPv4 address an IPv6 one carries, by the transition form that carries it. */
function embeddedIPv4(ip: ipaddr.IPv6): { form: string; ipv4: ipaddr.IPv4 } | undefined {
  const parts = ip.parts;
  const v4 = (high: number, low: number) => ipaddr.IPv4.parse(`${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`);
  if (ip.isIPv4MappedAddress()) return { form: "IPv4-mapped", ipv4: ip.toIPv4Address() };
  const zeros = (from: number, to: number) => parts.slice(from, to).every((part) => part === 0);
  // ::a.b.c.d (RFC 4291 §2.5.5.1, deprecated), but not :: and ::1.
  if (zeros(0, 6) && (parts[6] !== 0 || parts[7]! > 1)) return { form: "IPv4-compatible", ipv4: v4(parts[6]!, parts[7]!) };
  if (parts[0] === 0x64 && parts[1] === 0xff9b && zeros(2, 6)) return { form: "NAT64", ipv4: v4(parts[6]!, parts[7]!) };
  if (parts[0] === 0x2002) return { form: "6to4", ipv4: v4(parts[1]!, parts[2]!) };
  // Teredo: the client's IPv4 address, obfuscated (every bit flipped) in the last 32 bits.
  if (parts[0] === 0x2001 && parts[1] === 0) return { form: "Teredo", ipv4: v4(~parts[6]! & 0xffff, ~parts[7]! & 0xffff) };
  return undefined;
}

export type AddressPolicy = ReturnType<typeof createAddressPolicy>;

/**
 * The shape checks made at submit time: http(s), no credentials, a host, and (for an IP
 * literal, including decimal, octal and hex IPv4 forms, which the URL parser normalises) an
 * address the policy allows. The address of a host name is checked at each attempt.
 */
export function checkOutboundUrl(text: string, policy: AddressPolicy): string | undefined {
  if (text.length > 2048) return "must be at most 2048 characters";
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return "must be an absolute http or https URL";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return "must use http or https";
  if (url.username || url.password) return "must not contain credentials";
  if (!url.hostname) return "must name a host";
  if (url.port === "0") return "must not use port 0";
  const refusal = policy.isIpLiteral(url.hostname) ? policy.refusal(url.hostname) : undefined;
  return refusal && `must not point at ${url.hostname}, ${refusal}`;
}
