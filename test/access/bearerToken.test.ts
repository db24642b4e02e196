// The token is taken from the Authorization header only when the header is a bearer credential whose token
// has a JWT's characters: anything else is refused before any verification (401 invalid_request).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { bearerToken } from '../../src/access/authenticate.ts';

it('takes the token of a bearer header (scheme in any case, one or more spaces) and nothing else', () => {
  assert.equal(bearerToken('Bearer abc.DEF-_.123'), 'abc.DEF-_.123');
  assert.equal(bearerToken('bearer   abc.def.ghi'), 'abc.def.ghi', 'the scheme is case-insensitive (RFC 7235)');
  for (const refused of [undefined, '', 'Bearer', 'Bearer ', 'Bearerabc.def', 'Basic YWxpY2U6c2VjcmV0', 'Bearer abc def', 'Bearer abc.def ', 'Bearer abc/def', 'Bearer abc\u00e9', 'Token abc.def.ghi']) {
    assert.equal(bearerToken(refused), undefined, `refused: ${JSON.stringify(refused)}`);
  }
});
