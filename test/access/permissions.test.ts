import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { matrixTable } from '../../scripts/accessMatrix.ts';
import { roleAllows } from '../../src/access/permissions.ts';

describe('role permission matrix', () => {
  it('docs/access.md shows the matrix the code enforces', () => {
    const doc = readFileSync(new URL('../../docs/access.md', import.meta.url), 'utf8');
    assert.ok(doc.includes(matrixTable()), 'regenerate the table with: node --import tsx scripts/accessMatrix.ts');
  });

  it('keeps each role to its work', () => {
    assert.equal(roleAllows('care-home-staff', 'Observation', 'create'), true);
    assert.equal(roleAllows('care-home-staff', 'Encounter', 'update'), false);
    assert.equal(roleAllows('broker', 'Observation', 'read'), false);
    assert.equal(roleAllows('privacy-officer', 'Patient', 'read'), false);
    assert.equal(roleAllows('privacy-officer', 'AuditEvent', 'search'), true);
    assert.equal(roleAllows('admin', 'Organization', 'update'), true);
    for (const role of ['gp', 'person', 'privacy-officer', 'admin'] as const) {
      assert.equal(roleAllows(role, 'AuditEvent', 'create'), false, `${role} cannot write the audit`);
      assert.equal(roleAllows(role, '*', 'read'), false, `${role} cannot read across every type`);
    }
  });
});
