// The few plain pages of the authorization flow: sign in, choose who you act as, or why it stopped. Plain
// HTML with no scripts or styles of its own, so they work on any browser an app opens.
import type { AuthorizationRequest } from './authorize.ts';

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function layout(title: string, body: string): string {
  return `<!DOCTYPE html><html lang="en-GB"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escape(title)} – CareBridge</title></head><body><main><h1>${escape(title)}</h1>${body}</main></body></html>`;
}

interface PageContext { request: AuthorizationRequest; signed: string; csrf: string }

function hidden(ctx: PageContext): string {
  return `<input type="hidden" name="request" value="${escape(ctx.signed)}"><input type="hidden" name="csrf" value="${escape(ctx.csrf)}">`;
}

function errorText(error?: string): string {
  return error ? `<div role="alert"><h2>There is a problem</h2><p>${escape(error)}</p></div>` : '';
}

export function authorizePage(ctx: PageContext & { username?: string; askTotp?: boolean; error?: string }): string {
  const totp = ctx.askTotp ? `<p><label for="totp">Security code from your authenticator app</label><br><input id="totp" name="totp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}"></p>` : '';
  return layout('Sign in to CareBridge', `${errorText(ctx.error)}
<p><strong>${escape(ctx.request.clientName)}</strong> wants to use the shared care record for you (${escape(ctx.request.scope)}).</p>
<form method="post" action="/oauth2/authorize">${hidden(ctx)}
<p><label for="username">Username</label><br><input id="username" name="username" autocomplete="username" value="${escape(ctx.username ?? '')}" required></p>
<p><label for="password">Password</label><br><input id="password" name="password" type="password" autocomplete="current-password" required></p>
${totp}<p><button type="submit">Sign in</button></p></form>`);
}

export function choicePage(ctx: PageContext & { ticket: string; memberships: { organisation?: string; organisationName?: string; role: string }[]; error?: string }): string {
  const options = ctx.memberships
    .map((m, i) => `<p><input type="radio" id="m${i}" name="membership" value="${i}"${i === 0 ? ' checked' : ''}> <label for="m${i}">${escape(m.role)}${m.organisation ? `, ${escape(m.organisationName ?? m.organisation)} (${escape(m.organisation)})` : ''}</label></p>`)
    .join('');
  return layout('Who are you acting as?', `${errorText(ctx.error)}
<form method="post" action="/oauth2/authorize">${hidden(ctx)}<input type="hidden" name="ticket" value="${escape(ctx.ticket)}">
<fieldset><legend>Choose one</legend>${options}</fieldset><p><button type="submit">Continue</button></p></form>`);
}

export function errorPage(message: string): string {
  return layout('Sign-in stopped', `<p>${escape(message)}</p>`);
}
