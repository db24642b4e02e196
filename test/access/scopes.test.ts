import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { grantScopes, parseScope, parseScopes, personScopes, scopesAllow, systemScopes } from '../../src/access/scopes.ts';

describe('SMART scopes', () => {
  it('reads v2 letters and v1 read/write', () => {
    const v2 = parseScope('system/Patient.rs')!;
    assert.deepEqual([...v2.interactions].sort(), ['read', 'search']);
    assert.deepEqual([...parseScope('user/*.cruds')!.interactions].sort(), ['create', 'delete', 'read', 'search', 'update']);
    assert.deepEqual([...parseScope('system/Observation.read')!.interactions].sort(), ['read', 'search']);
    assert.deepEqual([...parseScope('system/*.write')!.interactions].sort(), ['create', 'delete', 'update']);
  });

  it('ignores non-resource scopes and refuses malformed or query-narrowed ones', () => {
    assert.equal(parseScope('openid'), undefined);
    assert.equal(parseScope('system/Patient.sr'), undefined, 'v2 letters must be in cruds order');
    assert.equal(parseScope('system/Patient.x'), undefined);
    assert.equal(parseScope('system/Observation.rs?category=laboratory'), undefined);
    assert.equal(parseScopes('openid fhirUser system/Patient.r').length, 1);
  });

  it('allows only what a scope names', () => {
    const scopes = parseScopes('system/Patient.rs system/Observation.c');
    assert.equal(scopesAllow(scopes, 'Patient', 'read'), true);
    assert.equal(scopesAllow(scopes, 'Patient', 'update'), false);
    assert.equal(scopesAllow(scopes, 'Observation', 'create'), true);
    assert.equal(scopesAllow(scopes, 'Observation', 'read'), false);
    assert.equal(scopesAllow(scopes, 'Encounter', 'read'), false);
    assert.equal(scopesAllow(parseScopes('system/*.rs'), 'Encounter', 'search'), true);
  });

  it("a client's own token counts only its system/ scopes: user/ and patient/ ones are a person's", () => {
    const own = systemScopes(parseScopes('user/*.cruds patient/*.rs system/Patient.r'));
    assert.equal(scopesAllow(own, 'Patient', 'read'), true);
    assert.equal(scopesAllow(own, 'Patient', 'search'), false);
    assert.equal(scopesAllow(own, 'Observation', 'read'), false);
  });

  it("a person's patient/ scopes count only in a token bound to a patient: unbound, they would reach everyone a user/ scope does", () => {
    const scopes = parseScopes('patient/Observation.rs');
    assert.equal(scopesAllow(personScopes(scopes, false), 'Observation', 'read'), false);
    assert.equal(scopesAllow(personScopes(scopes, true), 'Observation', 'read'), true);
    assert.equal(scopesAllow(personScopes(parseScopes('user/Patient.r patient/Observation.rs'), false), 'Patient', 'read'), true, 'user/ scopes are unaffected');
  });

  it('a token request can narrow its grant but never widen it', () => {
    assert.deepEqual(grantScopes('system/Patient.r', 'system/*.rs'), ['system/Patient.r']);
    assert.deepEqual(grantScopes('system/Patient.cruds', 'system/*.rs'), []);
    assert.deepEqual(grantScopes('user/Patient.r', 'system/*.rs'), [], 'a different context is a different grant');
    assert.deepEqual(grantScopes(undefined, 'system/*.rs system/Observation.c'), ['system/*.rs', 'system/Observation.c']);
  });
});
