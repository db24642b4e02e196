// A listener that cannot start, said in the operator's words: which listener (HTTP or HL7 v2), on which
// address, which setting gave it, and why. Node's own ("listen EADDRINUSE: address already in use
// 127.0.0.1:2575") names none of the first three, so a busy HL7 port read as if the HTTP port were taken.

/** Where a listener's host and port came from, for the message. */
export interface ListenSettings { what: string; host: string; port: number; hostSetting: string; portSetting: string }

const REASONS: Record<string, [about: 'host' | 'port', reason: string]> = {
  EADDRINUSE: ['port', 'another program is already listening there'],
  EACCES: ['port', 'this user may not listen on that port; ports below 1024 need more rights'],
  EADDRNOTAVAIL: ['host', 'this machine has no such address'],
  ENOTFOUND: ['host', 'no such host'],
  EAI_AGAIN: ['host', 'its name could not be looked up'],
};

/** The error to show for `err`, when it is the listener failing to start; undefined for any other error. */
export function cannotListen(err: unknown, s: ListenSettings): Error | undefined {
  const e = err as NodeJS.ErrnoException & { hostname?: string };
  const known = REASONS[e?.code ?? ''];
  const ours = e?.syscall === 'listen' || (e?.syscall === 'getaddrinfo' && e.hostname === s.host);
  if (!known || !ours) return undefined;
  const [about, reason] = known;
  return new Error(`cannot listen for ${s.what} on ${s.host}:${s.port} given by ${about === 'host' ? s.hostSetting : s.portSetting} (${reason}).`);
}
