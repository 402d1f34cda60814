import { describe, expect, it } from 'vitest';

import { fakeHost, sampleItem } from '../../fakes';
import { ComplianceController } from './compliance.svelte';

function withManualItem() {
  const host = fakeHost();
  host.items = [sampleItem('post.backup-restore', { automated: false, state: 'due', state_text: 'not done yet' })];
  return { host, compliance: new ComplianceController(host) };
}

describe('the compliance controller', () => {
  it('clears a form once its change is made, and keeps it when the change is refused', async () => {
    const { host, compliance } = withManualItem();
    await compliance.load();
    await compliance.open(host.items[0]!);
    compliance.waiverApprover = 'bob';
    await compliance.waive();
    expect(compliance.formError?.message, 'a waiver needs a reason').toContain('say why');
    expect(compliance.waiverApprover, 'what was typed stays for the next try').toBe('bob');
    compliance.signNote = 'restored last night';
    await compliance.signOff();
    expect(compliance.formError, 'the sign-off worked').toBeNull();
    expect(compliance.signNote, 'its note is not offered again').toBe('');
    expect(compliance.selected?.state, 'the panel shows the item as it now is').toBe('done');
  });

  it('fills the owner and due date from the item it opens', async () => {
    const { host, compliance } = withManualItem();
    host.items = [sampleItem('pre.strong-key', { owner: 'alice', due_at: Date.UTC(2026, 11, 1) / 1000 })];
    await compliance.open(host.items[0]!);
    expect(compliance.owner, 'the current owner').toBe('alice');
    expect(compliance.due, 'the due date as a date field reads it').toBe('2026-12-01');
  });
});
