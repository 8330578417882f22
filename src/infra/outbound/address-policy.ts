import ipaddr from "ipaddr.js";

/**
 * Which addresses outbound calls may reach. Only globally routable unicast addresses, by
 * ipaddr.js's range table: loopback, RFC 1918 private, unique-local, link-local (cloud
 * metadata at 169.254.169.254), CGNAT (100.64/10, also Alibaba's metadata), multicast,
 * unspecified, broadcast and reserved/documentation ranges are refused, and IPv4-mapped IPv6
 * is judged as the IPv4 address it carries. An operator allow-list of CIDRs or host names
 * opens exceptions (tests allow 127.0.0.1/32).
 */
export function createAddressPolicy(allow: readonly string[]) {
  const networks: [ipaddr.IPv4 | ipaddr.IPv6, number][] = [];
  const hosts = new Set<string>();
  for (const entry of allow) {
    if (entry.includes("/")) networks.push(ipaddr.parseCIDR(entry));
    else if (ipaddr.isValid(entry)) networks.push(ipaddr.parseCIDR(`${entry}/${ipaddr.parse(entry).kind() === "ipv4" ? 32 : 128}`));
    else hosts.add(entry.toLowerCase());
  }

  const normalise = (address: string): ipaddr.IPv4 | ipaddr.IPv6 => {
    const parsed = ipaddr.parse(address.replace(/^\[|\]$/g, ""));
    return parsed.kind() === "ipv6" && (parsed as ipaddr.IPv6).isIPv4MappedAddress() ? (parsed as ipaddr.IPv6).toIPv4Address() : parsed;
  };

  return {
    /** Why `address` may not be reached (e.g. "a loopback address"), or undefined when it may. */
    refusal(address: string): string | undefined {
      let ip: ipaddr.IPv4 | ipaddr.IPv6;
      try {
        ip = normalise(address);
      } catch {
        return "not an IP address";
      }
      if (networks.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits))) return undefined;
      const range = ip.range();
      return range === "unicast" ? undefined : `a ${range} address`;
    },
    /** Host names the operator allowed outright; their addresses are not checked. */
    hostAllowed: (hostname: string) => hosts.has(hostname.toLowerCase()),
    isIpLiteral: (hostname: string) => ipaddr.isValid(hostname.replace(/^\[|\]$/g, "")),
  };
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
  const refusal = policy.isIpLiteral(url.hostname) ? policy.refusal(url.hostname) : undefined;
  return refusal && `must not point at ${url.hostname}, ${refusal}`;
}
