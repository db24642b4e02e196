// Which web pages may call the FHIR API from a browser (CORS): those served from an origin a registered,
// unrevoked client signs people in back to (one of its redirect URIs'). A browser SMART app gets its token
// from /oauth2/token (which allows only its own client's origins) and then reads the record with it; the
// bearer token, never a cookie, is what lets it in, so a page from anywhere else only loses the ability to
// read the answers, which its own server-side code could fetch anyway.
import type { SqlDriver } from '../record/index.ts';

/** How long the set of origins is kept: a new or revoked client is seen within this, as revoked tokens are. */
const KEPT_MS = 10_000;

export function browserOrigins(driver: SqlDriver): (origin: string) => Promise<boolean> {
  let known: { origins: Set<string>; at: number } | undefined;
  let loading: Promise<Set<string>> | undefined;
  const load = async () => {
    const rows = await driver.all<{ redirect_uris: string | null }>('SELECT redirect_uris FROM access_clients WHERE revoked = 0 AND redirect_uris IS NOT NULL');
    const origins = new Set<string>();
    for (const row of rows) {
      for (const uri of JSON.parse(row.redirect_uris ?? '[]') as string[]) {
        try {
          origins.add(new URL(uri).origin);
        } catch {
          // a redirect URI was checked when the client was added; one that no longer parses names no origin
        }
      }
    }
    known = { origins, at: Date.now() };
    return origins;
  };
  return async (origin) => {
    const origins = known && Date.now() - known.at < KEPT_MS ? known.origins : await (loading ??= load().finally(() => (loading = undefined)));
    return origins.has(origin);
  };
}
