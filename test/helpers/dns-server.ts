import { createSocket } from "node:dgram";
import dnsPacket from "dns-packet";

export type DnsAnswer = { type: "A" | "AAAA"; address: string } | "NXDOMAIN";

/**
 * A real DNS server on 127.0.0.1 (UDP) whose answers the test decides per query, so that a
 * name can resolve to loopback, or change its answer between two look-ups (rebinding). Tests
 * point OUTBOUND_DNS_SERVERS at it; nothing leaves the machine.
 */
export async function startDnsServer(answerFor: (name: string, type: "A" | "AAAA", queryNumber: number) => DnsAnswer[]) {
  const socket = createSocket("udp4");
  const queries: { name: string; type: string }[] = [];
  socket.on("message", (message, remote) => {
    const query = dnsPacket.decode(message);
    const question = query.questions?.[0];
    if (!question) return;
    const type = question.type === "AAAA" ? "AAAA" : "A";
    queries.push({ name: question.name, type: question.type });
    const answers = question.type === "A" || question.type === "AAAA" ? answerFor(question.name, type, queries.filter((q) => q.name === question.name && q.type === question.type).length) : [];
    const nx = answers.includes("NXDOMAIN");
    const records = answers
      .filter((a): a is Exclude<DnsAnswer, "NXDOMAIN"> => a !== "NXDOMAIN" && a.type === type)
      .map((a) => ({ type: a.type, name: question.name, ttl: 0, class: "IN" as const, data: a.address }));
    const response = dnsPacket.encode({
      type: "response",
      id: query.id,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | (nx ? 3 : 0), // rcode 3: NXDOMAIN
      questions: query.questions,
      answers: records,
    });
    socket.send(response, remote.port, remote.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const { port } = socket.address();
  return {
    server: `127.0.0.1:${port}`,
    queries,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
