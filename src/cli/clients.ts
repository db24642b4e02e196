// carebridge clients add|list|revoke: the system clients that may get tokens from /oauth2/token.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { addClient, describeClient, listClients, revokeClient } from '../access/index.ts';
import { DB_OPTION_HELP, plainErrors } from './store.ts';
import { administer, withAccessStore } from './accessStore.ts';

export function clientsCommand(program: Command): void {
  const clients = program.command('clients').description('Manage system clients (OAuth2 client_credentials).');
  plainErrors(clients);

  plainErrors(
    clients
      .command('add')
      .description('Register a client. Prints its id and secret; the secret is shown only this once.')
      .requiredOption('--name <name>', 'who the client is, e.g. "Northshire discharge hub"')
      .option('--scopes <scopes>', 'SMART scopes, space-separated', 'system/*.rs')
      .option('--organization <ods>', 'ODS code of the organisation the client acts for')
      .option('--client-id <id>', 'choose the client id (default: a new UUID)')
      .option('--jwks <file>', 'public keys (JWKS JSON) for private_key_jwt instead of a secret')
      .option('--redirect-uri <uri...>', 'for an app that signs people in (SMART authorization code): where to send them back')
      .option('--public', 'an app that cannot keep a secret (browser or device): no secret, PKCE only')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (flags: { name: string; scopes: string; organization?: string; clientId?: string; jwks?: string; redirectUri?: string[]; public?: boolean; db?: string }) => {
        let jwks: { keys: Record<string, unknown>[] } | undefined;
        if (flags.jwks) {
          try {
            jwks = JSON.parse(readFileSync(flags.jwks, 'utf8'));
          } catch (err) {
            throw new Error(`cannot read the JWKS file ${flags.jwks}: ${(err as Error).message}`);
          }
        }
        const { client, secret } = await administer(
          flags.db,
          'clients add',
          (d) => addClient(d, { name: flags.name, scopes: flags.scopes, organization: flags.organization, clientId: flags.clientId, jwks, redirectUris: flags.redirectUri, publicClient: flags.public }),
          (added) => ({ action: 'client-added', target: added.client.clientId, detail: describeClient(added.client), ok: true }),
        );
        console.log(`client_id:     ${client.clientId}`);
        if (secret) console.log(`client_secret: ${secret}\n(Store the secret now: only a hash of it is kept.)`);
        else if (client.jwks) console.log('authentication: private_key_jwt with the registered keys');
        else console.log('authentication: none (a public app; PKCE protects its codes)');
        if (client.redirectUris.length) console.log(`redirect URIs: ${client.redirectUris.join(' ')}`);
        console.log(`scopes:        ${client.scopes}`);
      }),
  );

  plainErrors(
    clients
      .command('list')
      .description('List registered clients (never their secrets).')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (flags: { db?: string }) => {
        const all = await withAccessStore(flags.db, listClients);
        if (!all.length) return console.log('No clients.');
        for (const c of all) {
          console.log(`${c.clientId}\t${c.revoked ? 'REVOKED' : 'active'}\t${c.scopes}\t${c.organization ?? '-'}\t${c.jwks ? 'private_key_jwt' : c.hasSecret ? 'secret' : 'public (PKCE)'}\t${c.name}`);
        }
      }),
  );

  plainErrors(
    clients
      .command('revoke <clientId>')
      .description('Revoke a client: it gets no new tokens, and its tokens stop working within 10 seconds.')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (clientId: string, flags: { db?: string }) => {
        await administer(flags.db, 'clients revoke', (d) => revokeClient(d, clientId), () => ({ action: 'client-revoked', target: clientId, ok: true }));
        console.log(`Revoked ${clientId}.`);
      }),
  );
}
